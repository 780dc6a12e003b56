import { localTime, type LocalTime } from './local-time.js';
import { predictArrival, readyByToday } from './prediction.js';
import { addResources, NO_RESOURCES } from './resources.js';
import type {
  Action,
  BatchTask,
  Cause,
  Command,
  DesktopVm,
  EntityKind,
  EntityOf,
  Millis,
  Operation,
  Plan,
  PoolPolicy,
  Reason,
  Resources,
  SchedulerEvent,
  Snapshot,
  TransitionRecord,
  User,
} from './types.js';

/** Shared by every command that waits for nothing (never mutated). */
const NO_PREREQUISITES: string[] = Object.freeze([]) as unknown as string[];

/** `put` was not told what stood before the write (it looks it up only when an index needs it). */
const NOT_LOOKED_UP = Symbol('not looked up');

type Overlay = { [K in EntityKind]: Map<string, EntityOf<K> | null> };

/** What a host carries, as the plan so far sees it. */
export interface HostLoad {
  desktops: Resources;
  /** Batch tasks running (or just placed). */
  batchActive: Resources;
  /** Batch tasks told to checkpoint or stop; paused, on their way out. */
  batchYielding: Resources;
}

/** Desktop states that hold cores and memory on `hostId` (and `sourceHostId` while migrating). */
const EMPTY_LOAD: HostLoad = Object.freeze({ desktops: NO_RESOURCES, batchActive: NO_RESOURCES, batchYielding: NO_RESOURCES });

export const DESKTOP_HOLDING_STATES: ReadonlySet<DesktopVm['state']> = new Set(['RUNNING', 'SUSPENDING', 'RESTORING', 'MIGRATING', 'LOST']);
export const TASK_ACTIVE_STATES: ReadonlySet<BatchTask['state']> = new Set(['RUNNING']);
export const TASK_YIELDING_STATES: ReadonlySet<BatchTask['state']> = new Set(['CHECKPOINTING', 'STOPPING']);

export type CommandInput = Command extends infer C ? (C extends Command ? Omit<C, 'key' | 'cause' | 'after'> & { after?: string[] } : never) : never;

export function desktopFootprint(vm: DesktopVm): Resources {
  if (!vm.augmented) return vm.size;
  return { ...vm.size, cores: vm.size.cores + vm.augmented.cores, memoryMiB: vm.size.memoryMiB + vm.augmented.memoryMiB };
}

function subjectOf(cmd: CommandInput): { kind: 'vm' | 'task' | 'host'; id: string } {
  if ('vmId' in cmd) return { kind: 'vm', id: cmd.vmId };
  if ('taskId' in cmd) return { kind: 'task', id: cmd.taskId };
  if (cmd.type === 'wakeHost') return { kind: 'host', id: cmd.targetHostId };
  return { kind: 'host', id: cmd.hostId };
}

/**
 * A copy-on-write view of the snapshot while one plan is built. Every change goes through
 * here, so it is both visible to later decisions in the same plan and emitted as a
 * transition record with its cause.
 */
export class PlanDraft {
  readonly actions: Action[] = [];
  readonly reasons: Reason[] = [];
  private readonly overlay: Overlay = {
    pools: new Map(),
    hosts: new Map(),
    vms: new Map(),
    users: new Map(),
    jobs: new Map(),
    tasks: new Map(),
    operations: new Map(),
  };
  private vmsByHost: Map<string, Set<string>> | null = null;
  private tasksByHost: Map<string, Set<string>> | null = null;
  private opsBySubject: Map<string, Set<string>> | null = null;
  private readonly localTimes = new Map<string, LocalTime>();
  private readonly baseValues = new Map<EntityKind, unknown[]>();
  private readonly predictions = new Map<string, Millis | null>();
  private readonly readyByTimes = new Map<string, Millis | null>();
  private readonly causes = new Map<string, Cause>();
  private pendingVmMoves: [string, string[], string[]][] = [];
  private pendingTaskMoves: [string, string[], string[]][] = [];
  private seq = 0;

  constructor(
    readonly base: Snapshot,
    readonly event: SchedulerEvent,
    readonly now: Millis,
  ) {}

  // ------------------------------------------------------------ reading

  get<K extends EntityKind>(kind: K, id: string): EntityOf<K> | undefined {
    // The overlay holds null for deleted entities and nothing for untouched ones.
    const v = (this.overlay[kind] as Map<string, EntityOf<K> | null>).get(id);
    if (v !== undefined) return v === null ? undefined : v;
    return (this.base[kind] as Record<string, EntityOf<K>>)[id];
  }

  all<K extends EntityKind>(kind: K): Iterable<EntityOf<K>> {
    const o = this.overlay[kind] as Map<string, EntityOf<K> | null>;
    const b = this.base[kind] as Record<string, EntityOf<K>>;
    // Untouched tables are read straight from the snapshot (the common case at fleet scale),
    // once per plan: enumerating a 100k-key object is the costly part, not the loop.
    if (o.size === 0) {
      let values = this.baseValues.get(kind) as EntityOf<K>[] | undefined;
      if (!values) this.baseValues.set(kind, (values = valuesOf(b)));
      return values;
    }
    return this.merged(o, b);
  }

  private *merged<T>(o: Map<string, T | null>, b: Record<string, T>): Iterable<T> {
    for (const id in b) {
      if (o.has(id)) {
        const v = o.get(id);
        if (v) yield v;
      } else yield b[id] as T;
    }
    for (const [id, v] of o) if (v && !(id in b)) yield v;
  }

  localTimeOfPool(poolId: string): LocalTime | undefined {
    let lt = this.localTimes.get(poolId);
    if (!lt) {
      const pool = this.get('pools', poolId);
      if (!pool) return undefined;
      lt = localTime(this.now, pool.policy.timeZone);
      this.localTimes.set(poolId, lt);
    }
    return lt;
  }

  /** When a user's desktop should be ready by today (pre-staging, morning drain), once per plan. */
  readyBy(user: User, policy: PoolPolicy): Millis | null {
    let r = this.readyByTimes.get(user.id);
    if (r === undefined) this.readyByTimes.set(user.id, (r = readyByToday(user, policy, this.now)));
    return r;
  }

  /** Today's predicted arrival of a user, computed once per plan. */
  predictedArrival(user: User, policy: PoolPolicy): Millis | null {
    let p = this.predictions.get(user.id);
    if (p === undefined) this.predictions.set(user.id, (p = predictArrival(user, policy, this.now)));
    return p;
  }

  private vmIndex(): Map<string, Set<string>> {
    this.vmsByHost ??= this.buildVmIndex();
    if (this.pendingVmMoves.length > 0) {
      for (const [id, before, after] of this.pendingVmMoves) this.reindex(this.vmsByHost, id, before, after);
      this.pendingVmMoves = [];
    }
    return this.vmsByHost;
  }

  private taskIndex(): Map<string, Set<string>> {
    this.tasksByHost ??= this.buildTaskIndex();
    if (this.pendingTaskMoves.length > 0) {
      for (const [id, before, after] of this.pendingTaskMoves) this.reindex(this.tasksByHost, id, before, after);
      this.pendingTaskMoves = [];
    }
    return this.tasksByHost;
  }

  vmsOnHost(hostId: string): DesktopVm[] {
    const index = this.vmIndex();
    const out: DesktopVm[] = [];
    for (const id of index.get(hostId) ?? []) {
      const vm = this.get('vms', id);
      if (vm) out.push(vm);
    }
    return out;
  }

  tasksOnHost(hostId: string): BatchTask[] {
    const index = this.taskIndex();
    const out: BatchTask[] = [];
    for (const id of index.get(hostId) ?? []) {
      const t = this.get('tasks', id);
      if (t) out.push(t);
    }
    return out;
  }

  operationsOn(kind: 'vm' | 'task' | 'host', id: string): Operation[] {
    this.opsBySubject ??= this.buildOpIndex();
    const out: Operation[] = [];
    for (const opId of this.opsBySubject.get(`${kind}:${id}`) ?? []) {
      const op = this.get('operations', opId);
      if (op) out.push(op);
    }
    return out;
  }

  loadOf(hostId: string): HostLoad {
    // Most PCs of a big fleet carry nothing yet: no arrays, no sums.
    if (!this.vmIndex().get(hostId)?.size && !this.taskIndex().get(hostId)?.size) return EMPTY_LOAD;
    let desktops = NO_RESOURCES;
    let batchActive = NO_RESOURCES;
    let batchYielding = NO_RESOURCES;
    for (const vm of this.vmsOnHost(hostId)) desktops = addResources(desktops, desktopFootprint(vm));
    for (const t of this.tasksOnHost(hostId)) {
      if (TASK_ACTIVE_STATES.has(t.state)) batchActive = addResources(batchActive, t.resources);
      else if (TASK_YIELDING_STATES.has(t.state)) batchYielding = addResources(batchYielding, t.resources);
    }
    return { desktops, batchActive, batchYielding };
  }

  // ------------------------------------------------------------ writing

  /** One shared (never mutated) cause object per rule and plan. */
  cause(rule: string): Cause {
    let c = this.causes.get(rule);
    if (!c) this.causes.set(rule, (c = { eventId: this.event.id, event: this.event.type, rule }));
    return c;
  }

  /** Transition keys: the event id and the record's position in the plan (unique, replay-stable). */
  private nextKey(): string {
    this.seq += 1;
    return `${this.event.id}#${this.seq}`;
  }

  private put<K extends EntityKind>(kind: K, id: string, value: EntityOf<K> | null, known: EntityOf<K> | undefined | typeof NOT_LOOKED_UP = NOT_LOOKED_UP): void {
    // What stood before is only needed by a host index that exists already; looking it up
    // for every write cost more than the write (a round makes 100k operations).
    const indexed = (kind === 'vms' && this.vmsByHost) || (kind === 'tasks' && this.tasksByHost) || (kind === 'operations' && this.opsBySubject);
    const before = !indexed ? undefined : known === NOT_LOOKED_UP ? this.get(kind, id) : known;
    (this.overlay[kind] as Map<string, EntityOf<K> | null>).set(id, value);
    if (!indexed) return;
    // Host indexes catch up lazily, on their next read: a placement round writes 100k tasks
    // and never reads the index again.
    if (kind === 'vms' && this.vmsByHost) this.pendingVmMoves.push([id, vmHosts(before as DesktopVm | undefined), vmHosts(value as DesktopVm | null)]);
    if (kind === 'tasks' && this.tasksByHost) this.pendingTaskMoves.push([id, taskHosts(before as BatchTask | undefined), taskHosts(value as BatchTask | null)]);
    if (kind === 'operations' && this.opsBySubject) this.reindex(this.opsBySubject, id, opSubjects(before as Operation | undefined), opSubjects(value as Operation | null));
  }

  create<K extends EntityKind>(kind: K, entity: EntityOf<K>, rule: string): void {
    this.put(kind, entity.id, entity);
    // Entities are never mutated (every change makes a new object), so records may share them.
    const record: TransitionRecord = { type: 'recordTransition', key: this.nextKey(), cause: this.cause(rule), entity: kind, id: entity.id, op: 'create', set: entity as unknown as Record<string, unknown> };
    if ('state' in entity) record.to = String(entity.state);
    this.actions.push(record);
  }

  update<K extends EntityKind>(kind: K, id: string, set: Partial<EntityOf<K>>, rule: string): EntityOf<K> {
    const before = this.get(kind, id);
    if (!before) throw new Error(`Planning bug: update of unknown ${kind} ${id}`);
    // One spread then plain writes: two spreads in one literal take V8's slow path.
    const after = { ...before } as EntityOf<K>;
    for (const k in set) (after as unknown as Record<string, unknown>)[k] = (set as Record<string, unknown>)[k];
    this.put(kind, id, after, before);
    const record: TransitionRecord = { type: 'recordTransition', key: this.nextKey(), cause: this.cause(rule), entity: kind, id, op: 'update', set: set as Record<string, unknown> };
    if ('state' in before) record.from = String(before.state);
    if ('state' in after) record.to = String(after.state);
    this.actions.push(record);
    return after;
  }

  remove(kind: EntityKind, id: string, rule: string): void {
    if (!this.get(kind, id)) return;
    this.put(kind, id, null);
    this.actions.push({ type: 'recordTransition', key: this.nextKey(), cause: this.cause(rule), entity: kind, id, op: 'delete', set: {} });
  }

  /**
   * Emits a command and records it as an in-flight operation under the same key. `input` is
   * the caller's fresh object literal and becomes the command (completed in place, not
   * copied: a placement round emits 100k commands); do not reuse it afterwards.
   */
  command(input: CommandInput, rule: string): Command {
    const subject = subjectOf(input);
    const key = `${this.event.id}/${input.type}/${subject.id}/g${input.generation}`;
    const cmd = input as Command;
    cmd.after = input.after ?? NO_PREREQUISITES;
    cmd.key = key;
    cmd.cause = this.cause(rule);
    this.actions.push(cmd);
    this.create('operations', { id: key, type: cmd.type, subject, hostId: cmd.hostId, generation: cmd.generation, startedAt: this.now }, rule);
    return cmd;
  }

  emit(action: Action): void {
    this.actions.push(action);
  }

  reason(code: string, message: string, subject?: Reason['subject']): void {
    this.reasons.push(subject ? { code, message, subject } : { code, message });
  }

  finish(): Plan {
    return { actions: this.actions, reasons: this.reasons };
  }

  // ------------------------------------------------------------ indexes

  private reindex(index: Map<string, Set<string>>, id: string, before: string[], after: string[]): void {
    for (const k of before) index.get(k)?.delete(id);
    for (const k of after) {
      let s = index.get(k);
      if (!s) index.set(k, (s = new Set()));
      s.add(id);
    }
  }

  private buildVmIndex(): Map<string, Set<string>> {
    const idx = new Map<string, Set<string>>();
    for (const vm of this.all('vms')) if (DESKTOP_HOLDING_STATES.has(vm.state)) this.reindex(idx, vm.id, [], vmHosts(vm));
    return idx;
  }

  private buildTaskIndex(): Map<string, Set<string>> {
    const idx = new Map<string, Set<string>>();
    for (const t of this.all('tasks')) {
      if (!t.hostId) continue; // most tasks of a big queue run nowhere yet
      let s = idx.get(t.hostId);
      if (!s) idx.set(t.hostId, (s = new Set()));
      s.add(t.id);
    }
    return idx;
  }

  private buildOpIndex(): Map<string, Set<string>> {
    const idx = new Map<string, Set<string>>();
    for (const op of this.all('operations')) this.reindex(idx, op.id, [], opSubjects(op));
    return idx;
  }
}

/**
 * Object.values of a table. V8 reads the values of a big dictionary-mode object (a table
 * of 100k tasks) on a slow path several times costlier than its keys plus one lookup each.
 */
function valuesOf<T>(table: Record<string, T>): T[] {
  const keys = Object.keys(table);
  const out = new Array<T>(keys.length);
  for (let i = 0; i < keys.length; i++) out[i] = table[keys[i] as string] as T;
  return out;
}

function vmHosts(vm: DesktopVm | null | undefined): string[] {
  if (!vm || !DESKTOP_HOLDING_STATES.has(vm.state)) return [];
  const out: string[] = [];
  if (vm.hostId) out.push(vm.hostId);
  if ((vm.state === 'MIGRATING' || vm.state === 'LOST') && vm.sourceHostId && vm.sourceHostId !== vm.hostId) out.push(vm.sourceHostId);
  return out;
}

function taskHosts(t: BatchTask | null | undefined): string[] {
  return t?.hostId ? [t.hostId] : [];
}

function opSubjects(op: Operation | null | undefined): string[] {
  return op ? [`${op.subject.kind}:${op.subject.id}`] : [];
}
