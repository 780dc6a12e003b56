import { promises as fs } from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { CommandFrame, OpOutcome } from '@deskpool/protocol';
import path from 'node:path';
import { standardGuestTaskSchema, type StandardGuestTask } from '@deskpool/protocol';
import { DomainSpecSchema, guestDomainSpec, guestImage, isHypervisorError, type DomainSpec, type DomainState, type DomainType, type GuestImage, type HypervisorDriver, type Progress } from '@deskpool/kvm-driver';
import type { BatchLifecycle } from '../batch/watcher.js';
import type { Clock } from '../clock.js';
import { decideCommand, reconcileInterrupted } from './decide.js';
import { BATCH_DOMAIN_PREFIX, DEFAULT_WAKE_ON_LAN, planReconcile, sendMagicPacket, stateFileStillNeeded, type WakeOnLanTarget } from './fleet.js';
import type { CommandJournal, JournalBegin, JournalEnd } from './journal.js';
import type { MoveStateParams, StateMover } from './state-mover.js';
import { batchSpecProblems, checkpointPathProblem, DEFAULT_BATCH_IMAGE_DIRS, DEFAULT_PROTECTED_DIRS } from './batch-isolation.js';
import { prepareStateFile, sealStateFile } from './state-files.js';

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
  /** Where the serial consoles of VMs defined here are logged (DEFAULT_CONSOLE_DIR). */
  consoleDir?: string;
  /** Kernel and initramfs of the standard batch guest (default: the tiny guest of guest/build). */
  batchGuest?: GuestImage;
  /** Told when batch VMs start and leave, so their output is streamed and their end reported. */
  batch?: BatchLifecycle;
  /** How often migrate-in looks whether the migrated desktop arrived. */
  arrivalPollMs?: number;
  /**
   * Whether a saved-state file is here to restore from (default: a non-empty file on this
   * machine's disk). The simulator answers from its simulated shared storage.
   */
  stateFileExists?: (path: string) => Promise<boolean>;
  /**
   * TEST ONLY: a deliberately broken agent for the chaos harness (packages/chaos), to show its
   * checker catches a build without fencing. Stale generations are accepted and a reconcile
   * destroys nothing (while still reporting what it should have destroyed). No configuration
   * key or environment variable reaches it; only code that builds AgentDeps can set it.
   */
  testOnlyDisableFencing?: boolean;
  /**
   * What batch VMs may use: disk images only from `imageDirs` (default /var/lib/deskpool/images),
   * nothing in `protectedDirs` (default: saved desktop states, checkpoints, libvirt's managed
   * saves; the agent adds its state dir), and never a desktop's disk (see batch-isolation.ts).
   */
  batchIsolation?: { imageDirs?: string[]; protectedDirs?: string[] };
}

/**
 * Where VM consoles are logged unless configured: the same path on every PC, because a saved
 * VM carries its console path in its definition, and a task resumed on another PC must write
 * its console where that PC's agent reads it.
 */
export const DEFAULT_CONSOLE_DIR = '/var/lib/deskpool/consoles';

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
  /** Disk images of desktops defined here: no batch VM may be given one. */
  private readonly desktopDisks = new Set<string>();
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
        const name = command.target.domainName;
        // Without a spec the driver answers for a missing domain (DOMAIN_NOT_FOUND), unless the
        // PC provides the image itself (the simulated office does).
        if (command.params.spec && (await d.state(name)) === 'missing') {
          const spec = await this.completeSpec(command.params.spec, name, false);
          for (const disk of spec.disks) this.desktopDisks.add(disk.path);
          await d.define(spec, opts);
        }
        return { ...(await d.start(name, opts)) };
      }
      case 'suspend':
        return { ...(await d.managedSave(command.target.domainName, opts)) };
      case 'restore':
        return this.restoreDesktop(command.target.domainName, command.params.statePath, opts);
      case 'migrate-out': {
        const p = command.params;
        return { ...(await d.migrateLive(command.target.domainName, { uri: p.targetUri, ...(p.migrationUri ? { migrateUri: p.migrationUri } : {}) }, opts)) };
      }
      case 'migrate-in': {
        if (command.params.statePath) return { ...(await d.restoreFromFile(command.params.statePath, opts)) };
        return this.awaitArrival(command.target.domainName, command.params.arrivalTimeoutSeconds * 1000, onProgress);
      }
      case 'save-state':
        return this.saveStateFile(command.target.domainName, command.params.path, opts);
      case 'move-state':
        return this.moveSavedState(command.target.domainName, command.params, onProgress);
      case 'run-batch':
        return this.runBatch(command, onProgress);
      case 'checkpoint-batch': {
        const p = command.params;
        this.options.batch?.leaving(p.taskId);
        try {
          const r = p.path ? await this.saveStateFile(command.target.domainName, p.path, opts) : await d.managedSave(command.target.domainName, opts);
          return { ...r, taskId: p.taskId };
        } catch (err) {
          this.options.batch?.stayed(p.taskId);
          throw err;
        }
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
        this.options.batch?.leaving(command.params.taskId);
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
   * Boots or resumes a batch VM: from its checkpoint file when that is here, from a managed save,
   * or cold (defining it first when missing). A resume whose checkpoint is neither here nor
   * managed-saved fails rather than silently starting the task over from zero.
   */
  private async runBatch(command: Extract<CommandFrame, { kind: 'run-batch' }>, onProgress: (p: Progress) => void): Promise<Record<string, unknown>> {
    const d = this.driver;
    const opts = { onProgress };
    const p = command.params;
    const name = command.target.domainName;
    const logPath = this.consoleLogOf(name);
    await fs.mkdir(path.dirname(logPath), { recursive: true });
    const before = await d.state(name);
    let result: Record<string, unknown>;
    const exists = (file: string) => this.stateFileHere(file);
    if (p.restoreFrom) {
      const problem = await checkpointPathProblem(p.restoreFrom);
      if (problem) throw new CommandFailure('BATCH_ISOLATION', `task ${p.taskId} may resume only from its checkpoint: ${problem}`);
    }
    const checkpointHere = p.restoreFrom ? await exists(p.restoreFrom) : false;
    if (before === 'running' || before === 'paused') {
      result = { changed: false };
    } else if (p.restoreFrom && checkpointHere && before !== 'saved') {
      result = { ...(await d.restoreFromFile(p.restoreFrom, opts)), resumedFrom: p.restoreFrom };
    } else if (before === 'saved') {
      result = { ...(await d.start(name, opts)), resumedFrom: 'managed-save' };
    } else if (p.restoreFrom) {
      throw new CommandFailure('CHECKPOINT_MISSING', `checkpoint ${p.restoreFrom} of task ${p.taskId} is not on this host and ${name} has no managed save here (${before}); move the checkpoint here or resume the task where it lies`);
    } else {
      if (before === 'missing') {
        if (p.spec) await d.define(await this.isolatedBatchSpec(p.spec, name), opts);
        else if (p.guest) await d.define(await this.standardGuestSpec(name, p.guest), opts);
      }
      result = { ...(await d.start(name, opts)) };
    }
    await this.options.batch?.started({ taskId: p.taskId, domainName: name, generation: command.target.generation, logPath, ...(p.outputOffset !== undefined ? { outputOffset: p.outputOffset } : {}) });
    return { ...result, state: await d.state(name), taskId: p.taskId, consoleLog: logPath };
  }

  /** Whether a saved-state file is here: a non-empty regular file, unless the PC answers otherwise. */
  private stateFileHere(file: string): Promise<boolean> {
    if (this.options.stateFileExists) return this.options.stateFileExists(file);
    return fs.stat(file).then((s) => s.isFile() && s.size > 0, () => false);
  }

  /**
   * A desktop suspended here comes back from its managed save. One whose state was moved here
   * from another PC is not defined here: it is restored from the moved file and then defined
   * from its own running definition, so that the next suspend (a managed save) works here.
   */
  private async restoreDesktop(name: string, statePath: string | undefined, opts: { onProgress: (p: Progress) => void }): Promise<Record<string, unknown>> {
    const d = this.driver;
    // The common case (a managed save here) goes straight to the driver: it reads the state
    // itself, and a query more stands between a tap and the desktop.
    if (!statePath) return { ...(await d.restore(name, opts)) };
    const state = await d.state(name);
    if (state === 'saved' || state === 'running' || state === 'paused') return { ...(await d.restore(name, opts)) };
    if (!(await this.stateFileHere(statePath))) {
      throw new CommandFailure('STATE_MISSING', `desktop ${name} is ${state} here with no managed save, and its saved state ${statePath} is not on this PC; move the state here first or restore it where it lies`);
    }
    const restored = await d.restoreFromFile(statePath, opts);
    if (restored.name !== name) {
      throw new CommandFailure('STATE_MISMATCH', `${statePath} holds the state of ${restored.name}, not ${name}; it was restored as ${restored.name}: check which file was moved here`);
    }
    const persisted = await d.persist(name, opts);
    return { changed: true, state: restored.state, resumedFrom: statePath, definedHere: persisted.changed };
  }

  /**
   * Sends a desktop's saved state to the PC that will restore it: the file at `path`, or, when
   * the desktop was suspended here (a managed save), libvirt's image of it. After a managed
   * save is copied (checksummed), the domain is undefined here with its managed save (disks
   * kept): left defined, a later restore here would bring back this older copy.
   */
  private async moveSavedState(name: string, params: MoveStateParams, onProgress: (p: Progress) => void): Promise<Record<string, unknown>> {
    if (!this.moveState) throw new CommandFailure('NOT_CONFIGURED', 'move-state needs an SSH identity: set stateMover (privateKeyPath, username) in the agent config');
    if (await this.stateFileHere(params.path)) return this.moveState(params, onProgress);
    const image = await this.driver.managedSaveImagePath(name);
    if (!image) {
      const state = await this.driver.state(name);
      throw new CommandFailure('STATE_MISSING', `no saved state of ${name} on this PC: ${params.path} is not here and the domain has no managed save (it is ${state}); nothing was moved`);
    }
    const moved = await this.moveState({ ...params, path: image }, onProgress);
    await this.driver.undefine(name, { onProgress });
    return { ...moved, movedFrom: 'managed-save', undefinedHere: true };
  }

  /** A batch VM's definition, refused (BATCH_ISOLATION) when it would reach a desktop's data. */
  private async isolatedBatchSpec(raw: Record<string, unknown>, domainName: string): Promise<DomainSpec> {
    const spec = await this.completeSpec(raw, domainName, true);
    const policy = this.options.batchIsolation;
    const problems = await batchSpecProblems(spec, {
      imageDirs: policy?.imageDirs ?? DEFAULT_BATCH_IMAGE_DIRS,
      protectedDirs: policy?.protectedDirs ?? DEFAULT_PROTECTED_DIRS,
      desktopDisks: this.desktopDisks,
    });
    if (problems.length > 0) throw new CommandFailure('BATCH_ISOLATION', `batch VM ${domainName} refused: ${problems.join('; ')}`);
    return spec;
  }

  /**
   * Saves to a file readable by root only: its directory made 0700 first, the file 0600 after.
   * Skipped when saved states live in simulated storage (stateFileExists is then given).
   */
  private async saveStateFile(domainName: string, file: string, opts: { onProgress: (p: Progress) => void }): Promise<Record<string, unknown>> {
    const onDisk = this.options.stateFileExists === undefined;
    if (onDisk) await prepareStateFile(file);
    const result = await this.driver.saveToFile(domainName, file, opts);
    if (onDisk) await sealStateFile(file);
    return { ...result };
  }

  private consoleLogOf(domainName: string): string {
    return path.join(this.options.consoleDir ?? DEFAULT_CONSOLE_DIR, `${domainName}.log`);
  }

  private domainTypeCache: DomainType | undefined;

  private async domainType(): Promise<DomainType> {
    this.domainTypeCache ??= (await this.driver.hostInfo()).domainType;
    return this.domainTypeCache;
  }

  /**
   * A spec from the control plane, with what only this PC knows filled in: the domain type it
   * can run and where consoles are logged (always the agent's place for batch VMs, whose
   * output it streams). Refused with INVALID_SPEC when it fails the driver's schema.
   */
  private async completeSpec(raw: Record<string, unknown>, domainName: string, batch: boolean): Promise<DomainSpec> {
    const serialLogPath = batch || raw.serialLogPath === undefined ? this.consoleLogOf(domainName) : raw.serialLogPath;
    const filled = { ...raw, domainType: raw.domainType ?? (await this.domainType()), serialLogPath };
    if (typeof serialLogPath === 'string' && serialLogPath.startsWith('/')) await fs.mkdir(path.dirname(serialLogPath), { recursive: true });
    return parseSpec(filled, domainName);
  }

  /** The standard batch guest booted with the task's command, environment and index. */
  private async standardGuestSpec(domainName: string, guest: StandardGuestTask): Promise<DomainSpec> {
    const task = standardGuestTaskSchema.parse(guest);
    const script = standardGuestScript(task);
    const bytes = Buffer.byteLength(script, 'utf8');
    if (bytes > 2048) {
      throw new CommandFailure('INVALID_SPEC', `the command and environment of this task make a ${bytes}-byte script; the standard guest takes at most 2048 bytes on its kernel command line: pass large inputs through a file or an image`);
    }
    const spec = guestDomainSpec({
      name: domainName,
      serialLogPath: this.consoleLogOf(domainName),
      domainType: await this.domainType(),
      vcpus: task.vcpus,
      memoryMiB: task.memoryMiB,
      task: { script, poweroffWhenDone: true },
      image: this.options.batchGuest ?? guestImage(),
    });
    const boot = spec.boot ? { ...spec.boot, cmdline: `${spec.boot.cmdline ?? ''} deskpool.index=${task.index}`.trim() } : undefined;
    return parseSpec({ ...spec, ...(boot ? { boot } : {}) }, domainName);
  }

  /**
   * The target half of a live migration: the source PC's migrate-out moves the desktop; this
   * waits until it runs here (paused while the last pages arrive), at most `timeoutMs`.
   */
  private async awaitArrival(name: string, timeoutMs: number, onProgress: (p: Progress) => void): Promise<Record<string, unknown>> {
    const deadline = this.clock.now() + timeoutMs;
    for (;;) {
      const state = await this.driver.state(name);
      if (state === 'running') return { changed: false, state };
      if (this.clock.now() >= deadline) {
        throw new CommandFailure('NOT_ARRIVED', `domain ${name} is ${state} here, not running, after waiting ${Math.round(timeoutMs / 1000)} s; the migration has not arrived (the desktop stays on its source)`);
      }
      onProgress({ phase: `waiting for the migration to arrive (${state} here)` });
      await new Promise<void>((resolve) => this.clock.setTimeout(resolve, this.options.arrivalPollMs ?? 500));
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

const shellQuote = (word: string): string => `'${word.replace(/'/g, `'\\''`)}'`;

/** The shell script the standard guest runs for a task: its environment, then its command. */
export function standardGuestScript(task: StandardGuestTask): string {
  const lines = Object.entries(task.env).map(([k, v]) => `export ${k}=${shellQuote(v)}`);
  lines.push(`export DESKPOOL_TASK_INDEX=${task.index}`);
  lines.push(task.command.map(shellQuote).join(' '));
  return `${lines.join('\n')}\n`;
}

function parseSpec(spec: Record<string, unknown>, domainName: string): DomainSpec {
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
