// A child process the harness may kill -9 and start again: the APIs, the scheduler workers,
// the agent fleets and the office. Output goes to a log file per process.
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';

export interface ProcessSpec {
  name: string;
  /** A Node entry point (dist/*.js). */
  script: string;
  args?: string[];
  env: NodeJS.ProcessEnv;
  logFile: string;
  /** An IPC channel to the child (agent fleets and the office). */
  ipc?: boolean;
}

export class ManagedProcess {
  child: ChildProcess | null = null;
  starts = 0;
  private exitListeners: ((code: number | null, signal: NodeJS.Signals | null) => void)[] = [];

  constructor(readonly spec: ProcessSpec) {}

  start(): ChildProcess {
    const log = openSync(this.spec.logFile, 'a');
    // Children run built code with plain Node: no inherited --conditions=source (a test
    // runner's) that would make them load TypeScript sources.
    const { NODE_OPTIONS: _inherited, ...env } = this.spec.env;
    const options = { env, execArgv: [] as string[], stdio: ['ignore', log, log, ...(this.spec.ipc ? ['ipc' as const] : [])] as ('ignore' | number | 'ipc')[] };
    const child = this.spec.ipc ? fork(this.spec.script, this.spec.args ?? [], options) : spawn(process.execPath, [this.spec.script, ...(this.spec.args ?? [])], options);
    closeSync(log);
    child.on('error', () => undefined);
    child.on('exit', (code, signal) => {
      for (const l of this.exitListeners) l(code, signal);
    });
    this.child = child;
    this.starts += 1;
    return child;
  }

  onExit(listener: (code: number | null, signal: NodeJS.Signals | null) => void): void {
    this.exitListeners.push(listener);
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** kill -9 and wait for it to be gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    await gone;
  }

  /** SIGTERM, then SIGKILL after graceMs. */
  async stop(graceMs = 5000): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await gone;
    clearTimeout(timer);
  }
}
