// CommandRunner over SSH: the LibvirtDriver (and anything else taking a runner) runs the same
// argv on a host without an agent, e.g. `virsh -c qemu:///system ...` there.
import { createInterface } from 'node:readline';
import type { CommandResult, CommandRunner, RunOptions } from '../driver.js';
import { HostUnreachable, OperationAborted, OperationTimeout } from '../errors.js';
import { SshConnection, type SshTargetInput } from './ssh-connection.js';
import { splitPidMarker, trackedCommandLine } from './shell-quote.js';

export class SshCommandRunner implements CommandRunner {
  readonly connection: SshConnection;
  readonly description: string;

  constructor(target: SshTargetInput | SshConnection) {
    this.connection = target instanceof SshConnection ? target : new SshConnection(target);
    this.description = this.connection.description;
  }

  async run(argv: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
    const what = `${argv.slice(0, 3).join(' ')} on ${this.connection.target.host}`;
    const line = trackedCommandLine(argv);
    if (opts.signal?.aborted) throw new OperationAborted(what);
    const channel = await this.connection.exec(line, opts.signal);
    return new Promise<CommandResult>((resolve, reject) => {
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let failure: Error | undefined;
      let exitCode: number | undefined;
      let exitSignal: string | undefined;
      let settled = false;
      const finish = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        fn();
      };
      const stop = (why: Error): void => {
        failure ??= why;
        // Settle now: the channel's close may wait on the remote side.
        finish(() => reject(why));
        this.killRemote(splitPidMarker(Buffer.concat(err).toString('utf8')).pid);
        channel.close();
      };
      const onAbort = (): void => stop(new OperationAborted(what));
      const timer = opts.timeoutMs ? setTimeout(() => stop(new OperationTimeout(what, opts.timeoutMs ?? 0)), opts.timeoutMs) : undefined;
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      channel.on('data', (b: Buffer) => out.push(b));
      channel.stderr.on('data', (b: Buffer) => err.push(b));
      channel.on('exit', (code: number | null, signalName?: string) => {
        if (typeof code === 'number') exitCode = code;
        if (signalName) exitSignal = signalName;
      });
      channel.on('close', () => {
        if (failure) return finish(() => reject(failure));
        if (exitCode === undefined && exitSignal === undefined) {
          // No exit status: the connection went away under the command.
          return finish(() => reject(new HostUnreachable(this.connection.target.host, `connection closed before ${argv[0] ?? 'the command'} finished`)));
        }
        finish(() => resolve({
          code: exitCode ?? (exitSignal ? 128 : 255),
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: splitPidMarker(Buffer.concat(err).toString('utf8')).rest,
        }));
      });
      if (opts.stdin !== undefined) channel.end(opts.stdin);
      else channel.end();
    });
  }

  async *stream(argv: readonly string[], opts: { signal: AbortSignal }): AsyncIterable<string> {
    if (opts.signal.aborted) return;
    const channel = await this.connection.exec(trackedCommandLine(argv), opts.signal);
    const stderr: Buffer[] = [];
    let code: number | undefined;
    channel.stderr.on('data', (b: Buffer) => stderr.push(b));
    channel.on('exit', (c: number | null) => {
      if (typeof c === 'number') code = c;
    });
    const onAbort = (): void => {
      this.killRemote(splitPidMarker(Buffer.concat(stderr).toString('utf8')).pid);
      channel.close();
    };
    opts.signal.addEventListener('abort', onAbort, { once: true });
    channel.end();
    try {
      for await (const line of createInterface({ input: channel, crlfDelay: Infinity })) yield line;
      if (!opts.signal.aborted && code !== undefined && code !== 0) {
        const text = splitPidMarker(Buffer.concat(stderr).toString('utf8')).rest;
        throw Object.assign(new Error(text || `${argv[0]} exited with ${code}`), { stderr: text });
      }
    } finally {
      opts.signal.removeEventListener('abort', onAbort);
      channel.close();
    }
  }

  close(): void {
    this.connection.close();
  }

  /** Stops a remote command: TERM, then KILL if it lingers. Best effort, in the background. */
  private killRemote(pid: number | undefined): void {
    if (!pid) return;
    const script = `kill -TERM ${pid} 2>/dev/null; for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 ${pid} 2>/dev/null || exit 0; sleep 0.2; done; kill -KILL ${pid} 2>/dev/null; true`;
    void this.connection
      .exec(`sh -c '${script}'`)
      .then((ch) => {
        ch.on('data', () => undefined);
        ch.stderr.on('data', () => undefined);
        ch.end();
      })
      .catch(() => undefined);
  }
}
