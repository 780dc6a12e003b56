// CommandRunner over SSH: the LibvirtDriver (and anything else taking a runner) runs the same
// argv on a host without an agent, e.g. `virsh -c qemu:///system ...` there.
import { createInterface } from 'node:readline';
import { StringDecoder } from 'node:string_decoder';
import type { CommandResult, CommandRunner, InteractiveProcess, RunOptions } from '../driver.js';
import { HostUnreachable, OperationAborted, OperationTimeout } from '../errors.js';
import { SshConnection, type SshTargetInput } from './ssh-connection.js';
import { PID_MARKER, splitPidMarker, trackedCommandLine } from './shell-quote.js';

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

  /**
   * A long-lived remote process fed through stdin (the LibvirtDriver keeps one virsh shell
   * open this way, so short commands cost one round trip instead of a channel, a shell and a
   * libvirt connection each). Writes made before the channel is open are queued.
   */
  interactive(argv: readonly string[]): InteractiveProcess {
    const outCbs: ((s: string) => void)[] = [];
    const errCbs: ((s: string) => void)[] = [];
    const exitCbs: ((code: number | null) => void)[] = [];
    const outText = new StringDecoder('utf8');
    const errText = new StringDecoder('utf8');
    let channel: Awaited<ReturnType<SshConnection['exec']>> | undefined;
    let queued: string[] = [];
    let exited = false;
    let pid: number | undefined;
    let head = ''; // stderr until the PID marker line is complete
    let markerDone = false;
    const exit = (code: number | null): void => {
      if (exited) return;
      exited = true;
      for (const cb of exitCbs) cb(code);
    };
    this.connection.exec(trackedCommandLine(argv)).then(
      (ch) => {
        if (exited) {
          ch.close();
          return;
        }
        channel = ch;
        let code: number | null = null;
        ch.on('data', (b: Buffer) => {
          const t = outText.write(b);
          if (t) for (const cb of outCbs) cb(t);
        });
        ch.stderr.on('data', (b: Buffer) => {
          let t = errText.write(b);
          if (!markerDone) {
            head += t;
            if (head.startsWith(PID_MARKER) && !head.includes('\n')) return;
            markerDone = true;
            const split = splitPidMarker(head);
            pid = split.pid;
            t = split.rest;
          }
          if (t) for (const cb of errCbs) cb(t);
        });
        ch.on('exit', (c: number | null) => {
          if (typeof c === 'number') code = c;
        });
        ch.on('close', () => exit(code));
        for (const d of queued) ch.write(d);
        queued = [];
      },
      () => exit(null),
    );
    return {
      write: (data) => {
        if (exited) return;
        if (channel) channel.write(data);
        else queued.push(data);
      },
      onStdout: (cb) => outCbs.push(cb),
      onStderr: (cb) => errCbs.push(cb),
      onExit: (cb) => exitCbs.push(cb),
      kill: () => {
        this.killRemote(pid);
        channel?.close();
        exit(null);
      },
    };
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
