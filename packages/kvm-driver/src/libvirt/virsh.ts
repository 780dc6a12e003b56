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

  /**
   * Runs several virsh commands in one round trip (`a ; b` in virsh's own syntax): through the
   * session when it can, else as one process. virsh goes on after a failing command, so the
   * output of every command that worked is in stdout, and stderr holds the errors.
   */
  async sequence(commands: readonly (readonly string[])[], opts: Pick<VirshCallOptions, 'signal' | 'timeoutMs' | 'long'> = {}): Promise<CommandResult> {
    if (commands.length === 0) throw new Error('virsh sequence needs at least one command');
    if (!commands.every((c) => c.length > 0 && VirshSession.accepts(c))) throw new Error(`virsh sequence arguments must be plain words: ${JSON.stringify(commands)}`);
    const joined = commands.flatMap((c, i) => (i === 0 ? [...c] : [';', ...c]));
    const long = opts.long === true || commands.some((c) => LONG_COMMANDS.has(c[0] ?? ''));
    if (this.sessionEnabled && !long && !opts.signal?.aborted && this.session.usable) {
      try {
        const res = await this.session.exec(joined, opts.timeoutMs ?? DEFAULT_VIRSH_TIMEOUT_MS);
        if (res.code === 0 || !CONNECTION_LOST.test(res.stderr)) return res;
        this.session.close();
      } catch (e) {
        if (!(e instanceof SessionUnavailable)) throw e;
      }
    }
    // One argument: virsh parses it as a command string, `;` included. Its exit code is the last
    // command's, so a failure earlier in the sequence shows only in stderr, as in the session.
    const res = await this.runner.run(['virsh', '-q', '-c', this.uri, joined.join(' ')], { signal: opts.signal, timeoutMs: opts.timeoutMs ?? DEFAULT_VIRSH_TIMEOUT_MS });
    return res.code === 0 && /^error:/m.test(res.stderr) ? { ...res, code: 1 } : res;
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
