// A thin, typed wrapper around the virsh client: one argv per call, errors classified.
// Shared by LibvirtDriver and the live-migration module.
import type { CommandResult, CommandRunner } from '../driver.js';
import { classifyVirshError } from '../errors.js';
import { SessionUnavailable, VirshSession } from './session.js';

export interface VirshCallOptions {
  /** What we were doing, for error messages ("start", "managedsave", ...). */
  operation: string;
  domain?: string;
  /** The domain's state as we last saw it, for InvalidState messages. */
  state?: string;
  signal?: AbortSignal;
  timeoutMs?: number;
  stdin?: string;
  /** A long job (save, restore, migrate): run as its own process, never through the session. */
  long?: boolean;
}

export const DEFAULT_VIRSH_TIMEOUT_MS = 120_000;

/** virsh commands that run a libvirt job or may take long: always their own process. */
const LONG_COMMANDS = new Set(['migrate', 'managedsave', 'save', 'restore', 'start', 'create', 'dump', 'snapshot-create', 'snapshot-create-as', 'snapshot-revert', 'blockcopy', 'blockcommit', 'blockpull', 'event', 'console']);

const CONNECTION_LOST = /failed to connect to the hypervisor|no valid connection|Failed to reconnect|client socket is closed|Cannot recv data|End of file while reading data|Broken pipe/i;

export class Virsh {
  private readonly session: VirshSession;

  constructor(
    readonly runner: CommandRunner,
    /** libvirt connection URI as seen from where the runner runs. */
    readonly uri: string = 'qemu:///system',
    /** Keep one virsh shell open for short commands (when the runner supports it). */
    useSession = true,
  ) {
    this.session = new VirshSession(runner, uri);
    if (!useSession) this.session.close();
    this.sessionEnabled = useSession;
  }

  private readonly sessionEnabled: boolean;

  /** Stops the persistent virsh shell (it also ends by itself with the process). */
  close(): void {
    this.session.close();
  }

  /** Runs `virsh -c <uri> <args>`; returns stdout or throws a typed HypervisorError. */
  async run(args: readonly string[], opts: VirshCallOptions): Promise<string> {
    const res = await this.raw(args, opts);
    if (res.code !== 0) throw classifyVirshError(res.stderr || res.stdout, { operation: opts.operation, domain: opts.domain, uri: this.uri, state: opts.state });
    return res.stdout;
  }

  /** Runs virsh and hands back the exit code and output unclassified. */
  async raw(args: readonly string[], opts: Pick<VirshCallOptions, 'signal' | 'timeoutMs' | 'stdin' | 'long'> = {}): Promise<CommandResult> {
    if (this.sessionEnabled && !opts.long && !LONG_COMMANDS.has(args[0] ?? '') && opts.stdin === undefined && !opts.signal?.aborted && this.session.usable && VirshSession.accepts(args)) {
      try {
        const res = await this.session.exec(args, opts.timeoutMs ?? DEFAULT_VIRSH_TIMEOUT_MS);
        if (res.code === 0 || !CONNECTION_LOST.test(res.stderr)) return res;
        // The session's connection broke (libvirtd restarted or stopped): start afresh.
        this.session.close();
      } catch (e) {
        if (!(e instanceof SessionUnavailable)) throw e;
        // fall through: a fresh process gives the real error (e.g. libvirtd down) or succeeds
      }
    }
    return this.runner.run(['virsh', '-q', '-c', this.uri, ...args], {
      signal: opts.signal,
      timeoutMs: opts.timeoutMs ?? DEFAULT_VIRSH_TIMEOUT_MS,
      ...(opts.stdin !== undefined ? { stdin: opts.stdin } : {}),
    });
  }
}
