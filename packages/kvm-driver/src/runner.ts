// Runs commands on this machine: child_process with an argv (no shell, so nothing is ever
// interpreted), C locale so libvirt's error text is the English that errors.ts matches.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { CommandResult, CommandRunner, InteractiveProcess, RunOptions } from './driver.js';
import { HostUnreachable, OperationAborted, OperationTimeout } from './errors.js';

const KILL_GRACE_MS = 2000;

export class LocalCommandRunner implements CommandRunner {
  readonly description = 'local';

  run(argv: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
    const [cmd, ...args] = argv;
    if (!cmd) return Promise.reject(new TypeError('argv must name a program'));
    const what = argv.slice(0, 3).join(' ');
    if (opts.signal?.aborted) return Promise.reject(new OperationAborted(what));
    return new Promise<CommandResult>((resolve, reject) => {
      // Own process group, so a timeout or abort also stops whatever the program started.
      const child = spawn(cmd, args, {
        env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
        stdio: ['pipe', 'pipe', 'pipe'],
        detached: true,
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let settled = false;
      let failure: Error | undefined;
      const finish = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        fn();
      };
      const kill = (why: Error): void => {
        failure = why;
        killGroup(child.pid, 'SIGTERM');
        setTimeout(() => killGroup(child.pid, 'SIGKILL'), KILL_GRACE_MS).unref();
      };
      const onAbort = (): void => kill(new OperationAborted(what));
      const timer = opts.timeoutMs ? setTimeout(() => kill(new OperationTimeout(what, opts.timeoutMs ?? 0)), opts.timeoutMs) : undefined;
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.on('error', (e: NodeJS.ErrnoException) => {
        finish(() => reject(e.code === 'ENOENT' ? new HostUnreachable('localhost', `${cmd} is not installed: ${e.message}`, { cause: e }) : e));
      });
      child.on('close', (code, sig) => {
        finish(() => {
          if (failure) return reject(failure);
          resolve({ code: code ?? (sig ? 128 : 1), stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
        });
      });
      child.stdin.on('error', () => {
        /* the program may exit without reading stdin; its exit code tells the story */
      });
      if (opts.stdin !== undefined) child.stdin.end(opts.stdin);
      else child.stdin.end();
    });
  }

  interactive(argv: readonly string[]): InteractiveProcess {
    const [cmd, ...args] = argv;
    if (!cmd) throw new TypeError('argv must name a program');
    const child = spawn(cmd, args, { env: { ...process.env, LC_ALL: 'C', LANG: 'C', TERM: 'dumb' }, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    child.stdin.on('error', () => undefined);
    // A session must not keep the Node process alive by itself.
    child.unref();
    for (const s of [child.stdin, child.stdout, child.stderr] as unknown as { unref?: () => void }[]) s.unref?.();
    let exited = false;
    child.on('close', () => (exited = true));
    return {
      write: (data) => {
        if (!exited) child.stdin.write(data);
      },
      onStdout: (cb) => child.stdout.on('data', (b: Buffer) => cb(b.toString('utf8'))),
      onStderr: (cb) => child.stderr.on('data', (b: Buffer) => cb(b.toString('utf8'))),
      onExit: (cb) => {
        child.on('close', (code) => cb(code));
        child.on('error', () => cb(null));
      },
      kill: () => killGroup(child.pid, 'SIGKILL'),
    };
  }

  async *stream(argv: readonly string[], opts: { signal: AbortSignal }): AsyncIterable<string> {
    const [cmd, ...args] = argv;
    if (!cmd) throw new TypeError('argv must name a program');
    if (opts.signal.aborted) return;
    const child = spawn(cmd, args, { env: { ...process.env, LC_ALL: 'C', LANG: 'C' }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const stderr: Buffer[] = [];
    child.stderr.on('data', (b: Buffer) => stderr.push(b));
    const rl = createInterface({ input: child.stdout, crlfDelay: Infinity });
    const onAbort = (): void => {
      killGroup(child.pid, 'SIGTERM');
      // Ends the line iterator even while it waits for a line that will never come.
      rl.close();
      child.stdout.destroy();
    };
    opts.signal.addEventListener('abort', onAbort, { once: true });
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      for await (const line of rl) {
        if (opts.signal.aborted) break;
        yield line;
        if (opts.signal.aborted) break;
      }
      if (opts.signal.aborted) return;
      const code = await exited;
      if (!opts.signal.aborted && code !== 0) {
        const e = new Error(Buffer.concat(stderr).toString('utf8') || `${cmd} exited with ${code}`) as Error & { stderr?: string };
        e.stderr = Buffer.concat(stderr).toString('utf8');
        throw e;
      }
    } finally {
      opts.signal.removeEventListener('abort', onAbort);
      if (child.exitCode === null) killGroup(child.pid, 'SIGTERM');
    }
  }
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    /* already gone */
  }
}
