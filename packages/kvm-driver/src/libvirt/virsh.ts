// A thin, typed wrapper around the virsh client: one argv per call, errors classified.
// Shared by LibvirtDriver and the live-migration module.
import type { CommandResult, CommandRunner } from '../driver.js';
import { classifyVirshError } from '../errors.js';

export interface VirshCallOptions {
  /** What we were doing, for error messages ("start", "managedsave", ...). */
  operation: string;
  domain?: string;
  /** The domain's state as we last saw it, for InvalidState messages. */
  state?: string;
  signal?: AbortSignal;
  timeoutMs?: number;
  stdin?: string;
}

export const DEFAULT_VIRSH_TIMEOUT_MS = 120_000;

export class Virsh {
  constructor(
    readonly runner: CommandRunner,
    /** libvirt connection URI as seen from where the runner runs. */
    readonly uri: string = 'qemu:///system',
  ) {}

  /** Runs `virsh -c <uri> <args>`; returns stdout or throws a typed HypervisorError. */
  async run(args: readonly string[], opts: VirshCallOptions): Promise<string> {
    const res = await this.raw(args, opts);
    if (res.code !== 0) throw classifyVirshError(res.stderr || res.stdout, { operation: opts.operation, domain: opts.domain, uri: this.uri, state: opts.state });
    return res.stdout;
  }

  /** Runs virsh and hands back the exit code and output unclassified. */
  raw(args: readonly string[], opts: Pick<VirshCallOptions, 'signal' | 'timeoutMs' | 'stdin'> = {}): Promise<CommandResult> {
    return this.runner.run(['virsh', '-q', '-c', this.uri, ...args], {
      signal: opts.signal,
      timeoutMs: opts.timeoutMs ?? DEFAULT_VIRSH_TIMEOUT_MS,
      ...(opts.stdin !== undefined ? { stdin: opts.stdin } : {}),
    });
  }
}
