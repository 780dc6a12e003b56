// Typed failures of SSH connections. They keep HostUnreachable's code (the host cannot be used
// from here) but say precisely why and what to do, which differs a lot between the three.
import { HypervisorError, HostUnreachable } from '../errors.js';

/** The server presented a host key we do not trust: maybe reinstalled, maybe an impostor. */
export class HostKeyMismatch extends HypervisorError {
  readonly code = 'HOST_UNREACHABLE' as const;
  readonly reason = 'host-key-mismatch' as const;
  constructor(
    readonly host: string,
    readonly presented: string,
    readonly expected: string[],
  ) {
    super(
      `host key of ${host} is ${presented}, which is not trusted (expected ${expected.length ? expected.join(' or ') : 'a known_hosts entry for this host'})`,
      'Verify the host out of band; if it was legitimately reinstalled, update its known_hosts entry / fingerprint, then retry. Nothing was sent to it.',
    );
  }
}

export class SshAuthFailed extends HypervisorError {
  readonly code = 'HOST_UNREACHABLE' as const;
  readonly reason = 'auth-failed' as const;
  constructor(
    readonly host: string,
    readonly username: string,
    detail?: string,
  ) {
    super(
      `${host} refused key authentication for user ${username}`,
      `Add our public key to ~${username}/.ssh/authorized_keys on ${host} (or pass the right private key), then retry.`,
      detail,
    );
  }
}

/** Maps an ssh2 connection error to a typed one. */
export function classifySshError(err: unknown, host: string, username: string): HypervisorError {
  if (err instanceof HypervisorError) return err;
  const e = err as Error & { level?: string; code?: string };
  const text = e?.message ?? String(err);
  if (e?.level === 'client-authentication' || /All configured authentication methods failed/i.test(text)) {
    return new SshAuthFailed(host, username, text);
  }
  return new HostUnreachable(host, `${e?.code ? `${e.code}: ` : ''}${text}`, { cause: err });
}

/** What arrived differs from what was sent (or from the checksum the caller recorded). */
export class ChecksumMismatch extends HypervisorError {
  readonly code = 'HYPERVISOR_ERROR' as const;
  constructor(
    readonly path: string,
    readonly expected: string,
    readonly actual: string,
    readonly where: string,
  ) {
    super(
      `sha256 of ${path} on ${where} is ${actual}, expected ${expected}`,
      'The copy was discarded and the source kept; retry the move. If it repeats, check the disks and memory of both hosts.',
    );
  }
}
