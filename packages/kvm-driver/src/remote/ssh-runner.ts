// CommandRunner over SSH: the LibvirtDriver (and anything else taking a runner) runs the same
// argv on a host without an agent, e.g. `virsh -c qemu:///system ...` there.
import { createInterface } from 'node:readline';
import type { CommandResult, CommandRunner, RunOptions } from '../driver.js';
import { OperationAborted, OperationTimeout } from '../errors.js';
import { SshConnection, type SshTargetInput } from './ssh-connection.js';
import { commandLine } from './shell-quote.js';

export class SshCommandRunner implements CommandRunner {
  readonly connection: SshConnection;
  readonly description: string;

  constructor(target: SshTargetInput | SshConnection) {
    this.connection = target instanceof SshConnection ? target : new SshConnection(target);
    this.description = this.connection.description;
  }

  async run(argv: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
    const what = `${argv.slice(0, 3).join(' ')} on ${this.connection.target.host}`;
    const line = commandLine(argv);
    if (opts.signal?.aborted) throw new OperationAborted(what);
    const channel = await this.connection.exec(line, opts.signal);
    return new Promise<CommandResult>((resolve, reject) => {
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let failure: Error | undefined;
      let exitCode: number | undefined;
      let exitSignal: string | undefined;
      const stop = (why: Error): void => {
        failure ??= why;
        // Ask the remote process to stop, then drop the channel (sshd hangs it up either way).
        try {
          channel.signal('TERM');
        } catch {
          /* older servers refuse signal requests; closing the channel is enough */
        }
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
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        if (failure) return reject(failure);
        resolve({
          code: exitCode ?? (exitSignal ? 128 : 255),
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(err).toString('utf8'),
        });
      });
      if (opts.stdin !== undefined) channel.end(opts.stdin);
      else channel.end();
    });
  }

  async *stream(argv: readonly string[], opts: { signal: AbortSignal }): AsyncIterable<string> {
    if (opts.signal.aborted) return;
    const channel = await this.connection.exec(commandLine(argv), opts.signal);
    const stderr: Buffer[] = [];
    let code: number | undefined;
    channel.stderr.on('data', (b: Buffer) => stderr.push(b));
    channel.on('exit', (c: number | null) => {
      if (typeof c === 'number') code = c;
    });
    const onAbort = (): void => {
      channel.close();
    };
    opts.signal.addEventListener('abort', onAbort, { once: true });
    channel.end();
    try {
      for await (const line of createInterface({ input: channel, crlfDelay: Infinity })) yield line;
      if (!opts.signal.aborted && code !== undefined && code !== 0) {
        const text = Buffer.concat(stderr).toString('utf8');
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
}
