import { promises as fs } from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { CommandFrame, OpOutcome } from '@deskpool/protocol';
import { DomainSpecSchema, isHypervisorError, type DomainState, type HypervisorDriver, type Progress } from '@deskpool/kvm-driver';
import type { Clock } from '../clock.js';
import { decideCommand, reconcileInterrupted } from './decide.js';
import { BATCH_DOMAIN_PREFIX, DEFAULT_WAKE_ON_LAN, planReconcile, sendMagicPacket, stateFileStillNeeded, type WakeOnLanTarget } from './fleet.js';
import type { CommandJournal, JournalBegin, JournalEnd } from './journal.js';
import type { StateMover } from './state-mover.js';

export interface OpReport {
  idempotencyKey: string;
  outcome: OpOutcome;
  replayed: boolean;
  result?: Record<string, unknown>;
  error?: { code: string; message: string };
}

export interface ExecutorEvents {
  progress(idempotencyKey: string, percent: number, message: string | undefined): void;
  result(report: OpReport): void;
  log(message: string): void;
}

/** Puts the PC to sleep; separate so tests and the simulator never suspend the machine they run on. */
export type HostPower = (mode: 'suspend' | 'hibernate' | 'poweroff') => Promise<void>;

export const systemctlPower: HostPower = async (mode) => {
  await promisify(execFile)('systemctl', [mode]);
};

export interface ExecutorOptions {
  /** Where wake-host broadcasts the magic packet (default 255.255.255.255, port 9). */
  wakeOnLan?: WakeOnLanTarget;
  /**
   * Longest a command waits for the commands named in its `after` before starting anyway. A
   * dependency can fail or be lost on the way; the person at the keyboard must not wait forever.
   */
  afterWaitMs?: number;
  /**
   * TEST ONLY: a deliberately broken agent for the chaos harness (packages/chaos), to show its
   * checker catches a build without fencing. Stale generations are accepted and a reconcile
   * destroys nothing (while still reporting what it should have destroyed). No configuration
   * key or environment variable reaches it; only code that builds AgentDeps can set it.
   */
  testOnlyDisableFencing?: boolean;
}

const HOST_LANE = '__host__';

class CommandFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Carries out commands through the HypervisorDriver, exactly once per idempotency key, with the
 * journal written before acting and after finishing. Commands for the same VM run one after
 * another, in arrival order; commands for different VMs run side by side, so ordering across
 * VMs travels on the wire (`after`) and is awaited here.
 */
export class CommandExecutor {
  private readonly perVm = new Map<string, Promise<void>>();
  /** Commands waiting for a key to finish (its `end` is journaled). */
  private readonly finishWaiters = new Map<string, (() => void)[]>();

  constructor(
    private readonly journal: CommandJournal,
    private readonly driver: HypervisorDriver,
    private readonly clock: Clock,
    private readonly events: ExecutorEvents,
    private readonly power: HostPower = systemctlPower,
    private readonly reconcileSettleMs = 30_000,
    private readonly moveState?: StateMover,
    private readonly options: ExecutorOptions = {},
  ) {}

  /** Settles once the command is answered (result, replay or refusal). */
  handle(command: CommandFrame): Promise<void> {
    return this.inLane(command.target?.vmId, command.idempotencyKey, () => this.run(command));
  }

  private inLane(vmId: string | undefined, key: string, work: () => Promise<void>): Promise<void> {
    const lane = vmId ?? HOST_LANE;
    const previous = this.perVm.get(lane) ?? Promise.resolve();
    const next = previous.then(work).catch((err: unknown) => this.events.log(`command ${key} failed in the executor: ${String(err)}`));
    this.perVm.set(lane, next);
    return next;
  }

  private now(): string {
    return new Date(this.clock.now()).toISOString();
  }

  private async run(command: CommandFrame): Promise<void> {
    const key = command.idempotencyKey;
    const fenced = command.target && !this.options.testOnlyDisableFencing;
    const decision = decideCommand(command, this.journal.get(key), fenced ? this.journal.generationOf(command.target.vmId) : undefined);
    switch (decision.action) {
      case 'replay':
        this.events.result(toReport(decision.end, true));
        return;
      case 'already-running':
        // The first copy is still executing and will answer; acting twice is what we must not do.
        this.events.log(`command ${key} is already running; ignoring the repeat`);
        return;
      case 'refuse': {
        const end: JournalEnd = { t: 'end', key, outcome: 'refused', error: { code: decision.code, message: decision.message }, at: this.now() };
        // A conflict is not recorded: the key's journal entry belongs to the first command.
        if (decision.code === 'STALE_GENERATION') await this.finish(end);
        this.events.result(toReport(end, false));
        return;
      }
      case 'execute':
        break;
    }
    const notFinished = await this.waitForPredecessors(command.after ?? []);
    if (notFinished.length > 0) this.events.log(`command ${key} starts without ${notFinished.join(', ')}: not finished within ${this.afterWaitMs()} ms`);
    await this.journal.append({
      t: 'begin',
      key,
      kind: command.kind,
      ...(command.target ? { vmId: command.target.vmId, domainName: command.target.domainName, generation: command.target.generation } : {}),
      params: command.params as Record<string, unknown>,
      at: this.now(),
    });
    let end: JournalEnd;
    try {
      const result = await this.execute(command, (p) => this.progress(key, p));
      end = { t: 'end', key, outcome: 'succeeded', result: notFinished.length > 0 ? { ...result, startedWithout: notFinished } : result, at: this.now() };
    } catch (err) {
      end = { t: 'end', key, outcome: 'failed', error: describeError(err), at: this.now() };
    }
    await this.finish(end);
    this.events.result(toReport(end, false));
  }

  private afterWaitMs(): number {
    return this.options.afterWaitMs ?? 120_000;
  }

  /** Journals a command's end and wakes the commands ordered after it. */
  private async finish(end: JournalEnd): Promise<void> {
    await this.journal.append(end);
    const waiters = this.finishWaiters.get(end.key);
    this.finishWaiters.delete(end.key);
    for (const wake of waiters ?? []) wake();
  }

  /**
   * Waits until every named command has finished, failed or been refused, or the bound passes.
   * A dependency that has not arrived yet is waited for too: frames of one plan may be
   * delivered out of order. Returns the keys still unfinished at the bound.
   */
  private async waitForPredecessors(keys: readonly string[]): Promise<string[]> {
    const pending = keys.filter((k) => !this.journal.get(k)?.end);
    if (pending.length === 0) return [];
    await new Promise<void>((resolve) => {
      let left = pending.length;
      const timer = this.clock.setTimeout(() => resolve(), this.afterWaitMs());
      const done = () => {
        left -= 1;
        if (left === 0) {
          this.clock.clearTimeout(timer);
          resolve();
        }
      };
      for (const k of pending) this.finishWaiters.set(k, [...(this.finishWaiters.get(k) ?? []), done]);
    });
    return pending.filter((k) => !this.journal.get(k)?.end);
  }

  private progress(key: string, p: Progress): void {
    const percent = p.fraction !== undefined ? Math.round(Math.min(1, Math.max(0, p.fraction)) * 100) : 0;
    this.events.progress(key, percent, p.phase);
  }

  private async execute(command: CommandFrame, onProgress: (p: Progress) => void): Promise<Record<string, unknown>> {
    const d = this.driver;
    const opts = { onProgress };
    switch (command.kind) {
      case 'start': {
        if (command.params.spec) await d.define(parseSpec(command.params.spec, command.target.domainName), opts);
        return { ...(await d.start(command.target.domainName, opts)) };
      }
      case 'suspend':
        return { ...(await d.managedSave(command.target.domainName, opts)) };
      case 'restore':
        return { ...(await d.restore(command.target.domainName, opts)) };
      case 'migrate-out': {
        const p = command.params;
        return { ...(await d.migrateLive(command.target.domainName, { uri: p.targetUri, ...(p.migrationUri ? { migrateUri: p.migrationUri } : {}) }, opts)) };
      }
      case 'migrate-in': {
        if (command.params.statePath) return { ...(await d.restoreFromFile(command.params.statePath, opts)) };
        const state = await d.state(command.target.domainName);
        if (state !== 'running') throw new CommandFailure('NOT_ARRIVED', `domain ${command.target.domainName} is ${state} here, not running; the migration has not arrived`);
        return { changed: false, state };
      }
      case 'save-state':
        return { ...(await d.saveToFile(command.target.domainName, command.params.path, opts)) };
      case 'move-state':
        if (!this.moveState) throw new CommandFailure('NOT_CONFIGURED', 'move-state needs an SSH identity: set stateMover (privateKeyPath, username) in the agent config');
        return this.moveState(command.params, onProgress);
      case 'run-batch': {
        if (command.params.spec) await d.define(parseSpec(command.params.spec, command.target.domainName), opts);
        return { ...(await d.start(command.target.domainName, opts)), taskId: command.params.taskId };
      }
      case 'checkpoint-batch': {
        const r = command.params.path ? await d.saveToFile(command.target.domainName, command.params.path, opts) : await d.managedSave(command.target.domainName, opts);
        return { ...r, taskId: command.params.taskId };
      }
      case 'hotplug': {
        const name = command.target.domainName;
        const out: Record<string, unknown> = {};
        if (command.params.vcpus !== undefined) out.vcpus = await d.hotplugVcpus(name, command.params.vcpus, opts);
        if (command.params.memoryMiB !== undefined) out.memory = await d.hotplugMemory(name, command.params.memoryMiB, opts);
        out.state = await d.state(name);
        return out;
      }
      case 'sleep-host':
        await this.power(command.params.mode);
        return { mode: command.params.mode };
      case 'reconcile':
        return this.reconcileHost(command.params.expect);
      case 'delete-state':
        return this.deleteState(command.target.domainName, command.params.path);
      case 'stop-batch': {
        const state = await d.state(command.target.domainName);
        const live = state === 'running' || state === 'paused' || state === 'crashed';
        if (live) await d.destroy(command.target.domainName, opts);
        return { taskId: command.params.taskId, then: command.params.then, changed: live, state: live ? 'shutoff' : state };
      }
      case 'wake-host': {
        const bytes = await sendMagicPacket(command.params.mac, this.options.wakeOnLan ?? DEFAULT_WAKE_ON_LAN);
        return { targetHostId: command.params.targetHostId, mac: command.params.mac, bytes };
      }
    }
  }

  /**
   * Makes this host agree with the control plane after a fence. Commands already running in
   * other lanes finish first, so the domain list read here is not about to change under us.
   */
  private async reconcileHost(expect: Extract<CommandFrame, { kind: 'reconcile' }>['params']['expect']): Promise<Record<string, unknown>> {
    await Promise.all([...this.perVm.entries()].filter(([lane]) => lane !== HOST_LANE).map(([, tail]) => tail));
    const plan = planReconcile(expect, await this.driver.list(), (name) => name.startsWith(BATCH_DOMAIN_PREFIX) || this.journal.knowsDomain(name));
    for (const name of this.options.testOnlyDisableFencing ? [] : plan.destroy) await this.driver.destroy(name);
    return { foundRunningVmIds: plan.foundRunningVmIds, foundRunningTaskIds: plan.foundRunningTaskIds, destroyed: plan.destroy, changed: plan.destroy.length > 0 };
  }

  private async deleteState(domainName: string, path: string): Promise<Record<string, unknown>> {
    const state = await this.driver.state(domainName);
    if (stateFileStillNeeded(state)) {
      throw new CommandFailure('STATE_NEEDED', `domain ${domainName} is ${state} on this host and may still need ${path}; restore or stop it first, then delete the state again`);
    }
    const stat = await fs.lstat(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw err;
    });
    if (stat === null) return { path, changed: false };
    if (!stat.isFile()) throw new CommandFailure('NOT_A_STATE_FILE', `${path} is not a regular file; a saved state is one file, so nothing was deleted`);
    await fs.rm(path, { force: true });
    return { path, changed: true };
  }

  /**
   * After a restart: every command begun but not finished is judged against the hypervisor's
   * actual state, recorded, and reported, so its result is never lost. Each runs in its VM's
   * lane, so a command for that VM arriving meanwhile waits for the verdict.
   */
  reconcile(): Promise<void> {
    return Promise.all(
      this.journal.incomplete().map((begin) =>
        this.inLane(begin.vmId, begin.key, async () => {
          const end = await this.reconcileOne(begin);
          await this.finish(end);
          this.events.log(`reconciled interrupted ${begin.kind} ${begin.key}: ${end.outcome}`);
          this.events.result(toReport(end, false));
        }),
      ),
    ).then(() => undefined);
  }

  private async reconcileOne(begin: JournalBegin): Promise<JournalEnd> {
    try {
      // The hypervisor may still be finishing the job the dead agent started (a save keeps going
      // without its client): give it a settle window before calling the command failed.
      const deadline = this.clock.now() + this.reconcileSettleMs;
      let observed: DomainState;
      let verdict: ReturnType<typeof reconcileInterrupted>;
      for (;;) {
        observed = begin.domainName ? await this.driver.state(begin.domainName) : 'missing';
        const path = typeof begin.params.path === 'string' ? begin.params.path : undefined;
        const fileExists = path ? await fs.stat(path).then((s) => s.size > 0, () => false) : false;
        verdict = reconcileInterrupted(begin, observed, fileExists);
        if (verdict.outcome === 'succeeded' || this.clock.now() >= deadline) break;
        await new Promise<void>((resolve) => this.clock.setTimeout(resolve, 500));
      }
      const at = this.now();
      return verdict.outcome === 'succeeded'
        ? { t: 'end', key: begin.key, outcome: 'succeeded', result: { state: observed, note: verdict.message }, reconciled: true, at }
        : { t: 'end', key: begin.key, outcome: 'failed', error: { code: 'INTERRUPTED', message: verdict.message }, reconciled: true, at };
    } catch (err) {
      return { t: 'end', key: begin.key, outcome: 'failed', error: { code: 'INTERRUPTED', message: `interrupted by an agent restart and the domain state could not be read: ${describeError(err).message}` }, reconciled: true, at: this.now() };
    }
  }

  /** Waits for every queued command to finish (used on shutdown). */
  async drain(): Promise<void> {
    await Promise.all(this.perVm.values());
  }
}

function parseSpec(spec: Record<string, unknown>, domainName: string) {
  const parsed = DomainSpecSchema.safeParse(spec);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new CommandFailure('INVALID_SPEC', `domain spec invalid at ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
  }
  if (parsed.data.name !== domainName) throw new CommandFailure('INVALID_SPEC', `spec names domain ${parsed.data.name} but the command targets ${domainName}`);
  return parsed.data;
}

function describeError(err: unknown): { code: string; message: string } {
  if (err instanceof CommandFailure) return { code: err.code, message: err.message };
  if (isHypervisorError(err)) return { code: err.code, message: `${err.message}. ${err.hint}`.slice(0, 2000) };
  return { code: 'AGENT_ERROR', message: (err instanceof Error ? err.message : String(err)).slice(0, 2000) };
}

function toReport(end: JournalEnd, replayed: boolean): OpReport {
  return {
    idempotencyKey: end.key,
    outcome: end.outcome,
    replayed,
    ...(end.result ? { result: end.result } : {}),
    ...(end.error ? { error: end.error } : {}),
  };
}
