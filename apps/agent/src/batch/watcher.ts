// Watches the batch VMs this PC runs: streams their serial console as task-output frames while
// they run, and reports task-finished once when a guest powers off (or crashes) on its own.
// A VM that stops because the control plane checkpointed or stopped it has not finished.
import { TASK_OUTPUT_CHUNK_BYTES, type TaskFinishedFrame, type TaskOutputFrame } from '@deskpool/protocol';
import type { DomainState, HypervisorDriver } from '@deskpool/kvm-driver';
import type { Clock, TimerHandle } from '../clock.js';
import { utf8Prefix, type ConsoleLog } from './console-log.js';
import { parseGuestOutcome } from './guest-result.js';
import type { BatchTaskStore, WatchedTask } from './task-store.js';

type Unsequenced<F> = Omit<F, 'seq'>;
export type TaskEvent = Unsequenced<TaskOutputFrame> | Unsequenced<TaskFinishedFrame>;

/** What the command executor tells the watcher about batch VMs. */
export interface BatchLifecycle {
  /** A batch VM was booted or resumed here under this generation: watch it. */
  started(task: { taskId: string; domainName: string; generation: number; logPath: string; outputOffset?: number }): Promise<void>;
  /** A checkpoint or stop of the task is about to begin: its VM going down is not its end. */
  leaving(taskId: string): void;
  /** That checkpoint or stop failed and the VM may still run: watch for its end again. */
  stayed(taskId: string): void;
}

export interface BatchWatcherOptions {
  /** How often every watched VM is looked at, in case an event was missed. */
  pollMs?: number;
  /** Largest piece of console log in one task-output frame. */
  chunkBytes?: number;
  /** Tail of the log read for the guest's result line. */
  tailBytes?: number;
}

const STILL_UP: ReadonlySet<DomainState> = new Set(['running', 'paused']);

export class BatchWatcher implements BatchLifecycle {
  private readonly leavingTasks = new Set<string>();
  private readonly lanes = new Map<string, Promise<void>>();
  private readonly crashed = new Set<string>();
  private readonly abort = new AbortController();
  private pollTimer: TimerHandle | undefined;
  private stopped = false;

  constructor(
    private readonly store: BatchTaskStore,
    private readonly driver: HypervisorDriver,
    private readonly consoleLog: ConsoleLog,
    private readonly clock: Clock,
    private readonly send: (event: TaskEvent) => void,
    private readonly log: (message: string) => void,
    /** True when the command journal shows a checkpoint or stop of the task at or after this generation (survives restarts). */
    private readonly leavingPerJournal: (taskId: string, generation: number) => boolean,
    private readonly options: BatchWatcherOptions = {},
  ) {}

  /** Starts listening to hypervisor events and polling; looks at every watched task at once. */
  start(): void {
    void this.listen();
    this.schedulePoll(0);
  }

  async started(t: { taskId: string; domainName: string; generation: number; logPath: string; outputOffset?: number }): Promise<void> {
    this.leavingTasks.delete(t.taskId);
    this.crashed.delete(t.domainName);
    await this.inLane(t.taskId, async () => {
      const known = this.store.get(t.taskId);
      const sameLog = known !== undefined && known.logPath === t.logPath;
      // Bytes already in this PC's log (an earlier run here) were sent then, or belong to it.
      const sent = sameLog ? known.sent : await this.consoleLog.size(t.logPath);
      // Offsets continue the task's whole log: where the control plane says it stands, else
      // where this PC's earlier run of it left off, else from zero at the first new byte.
      const shift = t.outputOffset !== undefined ? t.outputOffset - sent : sameLog ? known.shift : -sent;
      await this.store.put({ taskId: t.taskId, domainName: t.domainName, generation: t.generation, logPath: t.logPath, shift, sent, status: 'running' });
    });
  }

  leaving(taskId: string): void {
    this.leavingTasks.add(taskId);
  }

  stayed(taskId: string): void {
    this.leavingTasks.delete(taskId);
    if (this.store.get(taskId)) void this.checkNow(taskId);
  }

  /** Looks at one task now: sends new output, and its end if the guest is down. */
  checkNow(taskId: string): Promise<void> {
    return this.inLane(taskId, () => this.check(taskId));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    if (this.pollTimer) this.clock.clearTimeout(this.pollTimer);
    await Promise.all(this.lanes.values());
  }

  private inLane(taskId: string, work: () => Promise<void>): Promise<void> {
    const next = (this.lanes.get(taskId) ?? Promise.resolve()).then(work).catch((err: unknown) => this.log(`batch task ${taskId}: ${(err as Error).message}`));
    this.lanes.set(taskId, next);
    return next;
  }

  private schedulePoll(delayMs: number): void {
    if (this.stopped) return;
    this.pollTimer = this.clock.setTimeout(() => {
      const running = this.store.all().filter((t) => t.status === 'running');
      void Promise.all(running.map((t) => this.checkNow(t.taskId))).then(() => this.schedulePoll(this.options.pollMs ?? 2_000));
    }, delayMs);
  }

  private async listen(): Promise<void> {
    while (!this.stopped) {
      try {
        for await (const ev of this.driver.events({ signal: this.abort.signal })) {
          if (ev.type === 'crashed') this.crashed.add(ev.name);
          if (ev.type !== 'stopped' && ev.type !== 'crashed' && ev.type !== 'saved') continue;
          const task = this.store.all().find((t) => t.domainName === ev.name && t.status === 'running');
          if (task) void this.checkNow(task.taskId);
        }
      } catch (err) {
        if (this.stopped) return;
        this.log(`batch watcher: hypervisor events failed (${(err as Error).message}); polling meanwhile`);
      }
      if (this.stopped) return;
      // The event stream ended or failed: try again shortly; the poll covers the gap.
      await new Promise<void>((resolve) => this.clock.setTimeout(resolve, 5_000));
    }
  }

  private async check(taskId: string): Promise<void> {
    const task = this.store.get(taskId);
    if (!task || task.status !== 'running') return;
    await this.pump(task);
    const leaving = () => this.leavingTasks.has(taskId) || this.leavingPerJournal(taskId, task.generation);
    const state = await this.driver.state(task.domainName);
    if (STILL_UP.has(state)) return;
    if (leaving() || state === 'saved') {
      // Checkpointed or stopped by the control plane (a managed save is a checkpoint too): what
      // it printed here is sent; it may resume elsewhere, so this PC stops reading its console.
      await this.pump(task);
      await this.store.put({ ...task, status: 'left' });
      return;
    }
    await this.pump(task);
    if (leaving()) return;
    const tailBytes = this.options.tailBytes ?? 16 * 1024;
    const size = await this.consoleLog.size(task.logPath);
    const tail = (await this.consoleLog.read(task.logPath, Math.max(0, size - tailBytes), tailBytes)).toString('utf8');
    const outcome = parseGuestOutcome(tail);
    const crashed = state === 'crashed' || this.crashed.has(task.domainName);
    const reason = crashed ? 'crashed' : state === 'missing' ? 'vanished' : outcome.exitCode === null ? 'no-result' : undefined;
    this.send({
      type: 'task-finished',
      at: new Date(this.clock.now()).toISOString(),
      taskId,
      generation: task.generation,
      exitCode: crashed ? null : outcome.exitCode,
      ...(outcome.result !== undefined && !crashed ? { result: outcome.result } : {}),
      ...(reason ? { reason } : {}),
    });
    await this.store.put({ ...task, status: 'finished' });
    this.log(`batch task ${taskId} finished: exit ${outcome.exitCode ?? 'unknown'}${reason ? ` (${reason})` : ''}`);
  }

  /** Sends what the log gained since the last look, in chunks that end on whole characters. */
  private async pump(task: WatchedTask): Promise<void> {
    const chunk = this.options.chunkBytes ?? TASK_OUTPUT_CHUNK_BYTES;
    let size = await this.consoleLog.size(task.logPath);
    if (size < task.sent) {
      this.log(`batch task ${task.taskId}: console log ${task.logPath} shrank from ${task.sent} to ${size} bytes; continuing from its end`);
      task.sent = size;
      await this.store.put(task);
      return;
    }
    while (task.sent < size) {
      const buf = await this.consoleLog.read(task.logPath, task.sent, Math.min(chunk, size - task.sent));
      if (buf.length === 0) break;
      const piece = utf8Prefix(buf);
      this.send({
        type: 'task-output',
        at: new Date(this.clock.now()).toISOString(),
        taskId: task.taskId,
        generation: task.generation,
        offset: task.sent + task.shift,
        data: piece.toString('utf8'),
      });
      task.sent += piece.length;
      await this.store.put(task);
      // The rest of a character still being written comes with the next look.
      if (piece.length < buf.length) break;
      size = Math.max(size, await this.consoleLog.size(task.logPath));
    }
  }
}
