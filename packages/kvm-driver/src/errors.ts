// Typed hypervisor errors. Each carries a stable `code` (for the agent protocol and the API) and
// a `hint` telling the caller what to do next. classifyVirshError() maps libvirt's error text.

export type HypervisorErrorCode =
  | 'DOMAIN_NOT_FOUND'
  | 'ALREADY_IN_STATE'
  | 'INVALID_STATE'
  | 'INVALID_SPEC'
  | 'HOST_UNREACHABLE'
  | 'LIBVIRT_DOWN'
  | 'INSUFFICIENT_RESOURCES'
  | 'MIGRATION_FAILED'
  | 'OPERATION_TIMEOUT'
  | 'OPERATION_ABORTED'
  | 'HYPERVISOR_ERROR';

export abstract class HypervisorError extends Error {
  abstract readonly code: HypervisorErrorCode;
  readonly hint: string;
  /** Raw text from the hypervisor, when there was one. */
  readonly detail: string | undefined;

  constructor(message: string, hint: string, detail?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.hint = hint;
    this.detail = detail;
  }

  toJSON(): { code: HypervisorErrorCode; message: string; hint: string; detail?: string } {
    return { code: this.code, message: this.message, hint: this.hint, ...(this.detail ? { detail: this.detail } : {}) };
  }
}

export class DomainNotFound extends HypervisorError {
  readonly code = 'DOMAIN_NOT_FOUND' as const;
  constructor(readonly domain: string, detail?: string) {
    super(`domain ${domain} does not exist on this host`, 'Check the name, or define the domain first; after a migration it lives on the target host.', detail);
  }
}

/** The domain is already where the operation would take it (most calls report this as changed=false instead). */
export class AlreadyInState extends HypervisorError {
  readonly code = 'ALREADY_IN_STATE' as const;
  constructor(readonly domain: string, readonly state: string, detail?: string) {
    super(`domain ${domain} is already ${state}`, 'Nothing to do; read the current state and carry on.', detail);
  }
}

/** The operation makes no sense in the domain's current state (e.g. pause a shut-off domain). */
export class InvalidState extends HypervisorError {
  readonly code = 'INVALID_STATE' as const;
  constructor(readonly domain: string, readonly state: string, readonly operation: string, detail?: string) {
    super(`cannot ${operation} domain ${domain} while it is ${state}`, `Bring the domain to a suitable state first (it is ${state}).`, detail);
  }
}

export class InvalidSpec extends HypervisorError {
  readonly code = 'INVALID_SPEC' as const;
  constructor(message: string, readonly issues: { path: string; message: string }[] = [], detail?: string) {
    super(message, 'Fix the named fields of the domain spec and retry.', detail);
  }
}

export class HostUnreachable extends HypervisorError {
  readonly code = 'HOST_UNREACHABLE' as const;
  constructor(readonly host: string, detail?: string, options?: { cause?: unknown }) {
    super(`host ${host} cannot be reached`, 'Check that the host is powered on and on the network (SSH/libvirt port open); retry later.', detail, options);
  }
}

export class LibvirtDown extends HypervisorError {
  readonly code = 'LIBVIRT_DOWN' as const;
  constructor(readonly uri: string, detail?: string) {
    super(`libvirt at ${uri} is not answering`, 'Start libvirtd on that host (scripts/libvirt.sh) and retry; running guests keep running meanwhile.', detail);
  }
}

export class InsufficientResources extends HypervisorError {
  readonly code = 'INSUFFICIENT_RESOURCES' as const;
  constructor(readonly resource: 'memory' | 'disk' | 'cpu', message: string, detail?: string) {
    super(message, resource === 'disk' ? 'Free disk space on the target (or pick another target) and retry.' : `Free ${resource} on the host (suspend or move other VMs) or pick another host.`, detail);
  }
}

export class MigrationFailed extends HypervisorError {
  readonly code = 'MIGRATION_FAILED' as const;
  constructor(readonly domain: string, readonly reason: string, detail?: string) {
    super(`migration of ${domain} failed: ${reason}`, 'The domain keeps running on the source unless post-copy had started; check the target and retry, or save and move it instead.', detail);
  }
}

export class OperationTimeout extends HypervisorError {
  readonly code = 'OPERATION_TIMEOUT' as const;
  constructor(readonly operation: string, readonly timeoutMs: number, detail?: string) {
    super(`${operation} did not finish within ${timeoutMs} ms`, 'Read the domain state before retrying: the operation may still complete on the host.', detail);
  }
}

export class OperationAborted extends HypervisorError {
  readonly code = 'OPERATION_ABORTED' as const;
  constructor(readonly operation: string, detail?: string) {
    super(`${operation} was aborted`, 'Read the domain state to see how far it got, then retry if still wanted.', detail);
  }
}

/** libvirt said something we do not map; detail holds its words. */
export class HypervisorFailure extends HypervisorError {
  readonly code = 'HYPERVISOR_ERROR' as const;
  constructor(readonly operation: string, detail: string) {
    super(`${operation} failed: ${firstErrorLine(detail)}`, 'Read the detail and the libvirt/QEMU logs on the host (/var/log/libvirt/qemu/<domain>.log).', detail);
  }
}

export function isHypervisorError(e: unknown): e is HypervisorError {
  return e instanceof HypervisorError;
}

/** virsh prints a generic line ("Failed to start domain 'x'") before libvirt's reason: keep the reason. */
function firstErrorLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim().replace(/^error:\s*/, '')).filter((l) => l.length > 0);
  const specific = lines.filter((l) => !/^Failed to \w+ (domain|from)\b/.test(l));
  return specific[specific.length - 1] ?? lines[lines.length - 1] ?? 'unknown error';
}

export interface ErrorContext {
  operation: string;
  domain?: string;
  uri: string;
  /** State the domain was in, when known (for InvalidState). */
  state?: string;
}

/**
 * Maps virsh's stderr to a typed error. libvirt's messages are stable English strings (no
 * localisation under LC_ALL=C, which the runner sets), so matching on them is reliable.
 */
export function classifyVirshError(stderr: string, ctx: ErrorContext): HypervisorError {
  const t = stderr;
  const name = ctx.domain ?? '?';
  if (/packet \d+ bytes received from server too large/i.test(t)) return new HostUnreachable(ctx.uri, `something other than libvirt answered: ${t}`);
  if (/failed to connect to the hypervisor|Failed to connect socket|Cannot recv data|End of file while reading data|no connection driver available|Connection reset by peer|Broken pipe|client socket is closed|no valid connection|Failed to reconnect to the hypervisor/i.test(t)) {
    if (/ssh|Connection refused.*:22|Could not resolve hostname|No route to host|Connection timed out/i.test(t)) return new HostUnreachable(ctx.uri, t);
    return new LibvirtDown(ctx.uri, t);
  }
  if (/Domain not found|failed to get domain|no domain with matching (name|uuid)/i.test(t)) return new DomainNotFound(name, t);
  if (ctx.operation === 'migrate' || /migrat/i.test(ctx.operation)) {
    if (/Cannot allocate memory|cannot set up guest memory|No space left on device/i.test(t)) {
      return new InsufficientResources(/No space/i.test(t) ? 'disk' : 'memory', `not enough ${/No space/i.test(t) ? 'disk' : 'memory'} on the migration target for ${name}`, t);
    }
    return new MigrationFailed(name, firstErrorLine(t.replace(/^error: (operation failed: )?/gm, '')), t);
  }
  if (/No space left on device|Disk quota exceeded|ENOSPC/i.test(t)) return new InsufficientResources('disk', `not enough disk space to ${ctx.operation} ${name}`, t);
  if (/Cannot allocate memory|cannot set up guest memory|Out of memory|insufficient memory|ENOMEM/i.test(t)) {
    return new InsufficientResources('memory', `not enough memory on the host to ${ctx.operation} ${name}`, t);
  }
  if (/domain is already running|already active/i.test(t)) return new AlreadyInState(name, 'running', t);
  if (/domain is not running|domain is already paused|not paused|Requested operation is not valid/i.test(t)) {
    return new InvalidState(name, ctx.state ?? 'in the wrong state', ctx.operation, t);
  }
  if (/XML error|XML document failed to validate|unsupported configuration|invalid argument/i.test(t)) {
    return new InvalidSpec(`${ctx.operation} of ${name} rejected: ${firstErrorLine(t)}`, [], t);
  }
  if (/operation aborted|job .*canceled/i.test(t)) return new OperationAborted(ctx.operation, t);
  if (/Timed out during operation/i.test(t)) return new OperationTimeout(ctx.operation, 0, t);
  return new HypervisorFailure(ctx.operation, t);
}
