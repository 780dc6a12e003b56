// Database rows ⇄ the planning core's types. Pure functions: no I/O, no clock.
// The database speaks the API's words (lower-case task states, ISO weekdays, minutes, percent);
// the core speaks its own (upper-case states, 0 = Sunday, milliseconds, fractions).
import type {
  BatchJob as BatchJobRow,
  BatchTask as BatchTaskRow,
  DesktopVm as DesktopVmRow,
  Host as HostRow,
  Operation as OperationRow,
  Pool as PoolRow,
  User as UserRow,
} from '@deskpool/db';
import { z } from 'zod';
import { defaultPolicy } from '../core/policy.js';
import type {
  BatchJob,
  BatchTask,
  CheckpointLocation,
  Command,
  DesktopVm,
  EntityKind,
  Host,
  Operation,
  OperationType,
  Pool,
  Resources,
  SavedStateLocation,
  TaskState,
  User,
} from '../core/types.js';

const MINUTE = 60_000;

/** The core asked to store a field the database has no column for: a runtime bug, not bad input. */
export class UnmappedFieldError extends Error {
  constructor(
    readonly entity: EntityKind,
    readonly field: string,
  ) {
    super(`The scheduler runtime cannot store ${entity}.${field}: add a column and a mapping in packages/scheduler/src/runtime/mapping.ts`);
    this.name = 'UnmappedFieldError';
  }
}

/** A stored value the scheduler cannot read (e.g. a job spec that no longer parses). */
export class UnreadableRowError extends Error {
  constructor(entity: string, id: string, problem: string) {
    super(`${entity} ${id} cannot be read by the scheduler: ${problem}. Fix the row (or its JSON column) and re-send the event.`);
    this.name = 'UnreadableRowError';
  }
}

// ---------------------------------------------------------------- small conversions

const ms = (d: Date | null | undefined): number | null => (d ? d.getTime() : null);

/** "gpu" → { gpu: "true" }, "rack=3" → { rack: "3" }: host labels and job labels meet here. */
export function labelsToRecord(labels: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const label of labels) {
    const eq = label.indexOf('=');
    if (eq <= 0) out[label] = 'true';
    else out[label.slice(0, eq)] = label.slice(eq + 1);
  }
  return out;
}

/** ISO weekday (1 = Monday … 7 = Sunday) → the core's (0 = Sunday … 6 = Saturday). */
export const isoToCoreWeekday = (d: number): number => d % 7;

/** The conventional place of a desktop's saved state file, on whichever host keeps it. */
export const savedStatePathOf = (vmName: string): string => `/var/lib/deskpool/saved/${vmName}.save`;
/** The conventional place of a batch task's checkpoint. */
export const checkpointPathOf = (taskId: string): string => `/var/lib/deskpool/checkpoints/${taskId}.save`;
/** libvirt domain name of a batch task's VM. */
export const batchDomainNameOf = (taskId: string): string => `dp-task-${taskId}`;

// ---------------------------------------------------------------- rows → core

const preStageBudgetSchema = z.object({ localDate: z.string(), usedCoreMs: z.number().nonnegative() });
const preStageSchema = z.object({ localDate: z.string(), predictedAt: z.number(), stagedAt: z.number() });

export type PoolRecord = Pick<
  PoolRow,
  | 'id'
  | 'timeZone'
  | 'officeDays'
  | 'officeHoursStart'
  | 'officeHoursEnd'
  | 'idleThresholdMinutes'
  | 'nightWindowStart'
  | 'nightWindowEnd'
  | 'batchAllowed'
  | 'maxBatchPercentOwnerPresent'
  | 'preStaging'
  | 'powerManagement'
  | 'storageMode'
  | 'checkpointGraceSeconds'
  | 'preStageBudget'
>;

/** Policy fields the data model does not carry yet keep the core's defaults. */
export function poolFromRow(row: PoolRecord): Pool {
  const base = defaultPolicy();
  const budget = preStageBudgetSchema.safeParse(row.preStageBudget);
  return {
    id: row.id,
    policy: {
      ...base,
      timeZone: row.timeZone,
      officeHours: { days: row.officeDays.map(isoToCoreWeekday).sort((a, b) => a - b), start: row.officeHoursStart, end: row.officeHoursEnd },
      idleThresholdMs: row.idleThresholdMinutes * MINUTE,
      nightWindow: { start: row.nightWindowStart, end: row.nightWindowEnd },
      batchWindow: row.batchAllowed ? 'outsideOfficeHours' : 'never',
      maxBatchShareWhileOwnerPresent: row.maxBatchPercentOwnerPresent / 100,
      preStaging: { ...base.preStaging, enabled: row.preStaging },
      powerManagement: row.powerManagement,
      storageMode: row.storageMode,
      checkpointGraceMs: row.checkpointGraceSeconds * 1000,
    },
    preStageBudget: budget.success ? budget.data : { localDate: '', usedCoreMs: 0 },
  };
}

export type HostRecord = Pick<
  HostRow,
  | 'id'
  | 'poolId'
  | 'cores'
  | 'memoryMiB'
  | 'diskGiB'
  | 'gpu'
  | 'labels'
  | 'onlineState'
  | 'needsReconcile'
  | 'presenceState'
  | 'presenceSince'
  | 'drained'
  | 'asleep'
  | 'ownerUserId'
> &
  Partial<Pick<HostRow, 'name' | 'inventory'>>;

/** What placement constraints may test besides labels (see the job spec's CONSTRAINT_ATTRIBUTES). */
function hostAttributes(row: HostRecord): Record<string, string> {
  const out: Record<string, string> = {};
  if (row.name !== undefined) out['host.name'] = row.name;
  if (row.gpu) out.gpu = row.gpu;
  const inventory = row.inventory;
  const cpuModel = inventory && typeof inventory === 'object' && !Array.isArray(inventory) ? (inventory as Record<string, unknown>).cpuModel : undefined;
  if (typeof cpuModel === 'string') out['cpu.model'] = cpuModel;
  return out;
}

export function hostFromRow(row: HostRecord): Host {
  return {
    id: row.id,
    poolId: row.poolId,
    resources: { cores: row.cores, memoryMiB: row.memoryMiB, diskGiB: row.diskGiB, gpus: row.gpu ? 1 : 0 },
    labels: labelsToRecord(row.labels),
    attributes: hostAttributes(row),
    online: row.onlineState === 'online',
    needsReconcile: row.needsReconcile,
    presence: row.presenceState,
    presenceSince: ms(row.presenceSince) ?? 0,
    draining: row.drained,
    asleep: row.asleep,
    ownerUserId: row.ownerUserId,
  };
}

export type VmRecord = Pick<
  DesktopVmRow,
  | 'id'
  | 'ownerUserId'
  | 'poolId'
  | 'state'
  | 'pinned'
  | 'currentHostId'
  | 'sourceHostId'
  | 'savedStateHostId'
  | 'savedStatePath'
  | 'fencingGeneration'
  | 'vcpus'
  | 'memoryMiB'
  | 'diskGiB'
  | 'augmentedVcpus'
  | 'augmentedMemoryMiB'
  | 'desiredHostId'
>;

/** Saved state on a host's disk names that host; a path without a host lies on shared storage. */
export function savedStateFromRow(row: Pick<DesktopVmRow, 'savedStateHostId' | 'savedStatePath'>): SavedStateLocation | null {
  if (row.savedStateHostId) return { kind: 'local', hostId: row.savedStateHostId };
  if (row.savedStatePath) return { kind: 'shared' };
  return null;
}

export function vmFromRow(row: VmRecord): DesktopVm {
  const augmented = row.augmentedVcpus !== 0 || row.augmentedMemoryMiB !== 0 ? { cores: row.augmentedVcpus, memoryMiB: row.augmentedMemoryMiB } : null;
  return {
    id: row.id,
    ownerUserId: row.ownerUserId,
    poolId: row.poolId,
    state: row.state,
    pinned: row.pinned,
    hostId: row.currentHostId,
    sourceHostId: row.sourceHostId,
    savedState: savedStateFromRow(row),
    generation: row.fencingGeneration,
    size: { cores: row.vcpus, memoryMiB: row.memoryMiB, diskGiB: row.diskGiB, gpus: 0 },
    augmented,
    desiredHostId: row.desiredHostId,
  };
}

export type UserRecord = Pick<UserRow, 'id' | 'poolId' | 'homeHostId' | 'arrivals' | 'preStage'>;

/** Users outside any pool have no desktop to plan for: null. */
export function userFromRow(row: UserRecord): User | null {
  if (!row.poolId) return null;
  const preStage = preStageSchema.safeParse(row.preStage);
  return {
    id: row.id,
    poolId: row.poolId,
    homeHostId: row.homeHostId,
    arrivals: row.arrivals.map((d) => d.getTime()),
    preStage: preStage.success ? preStage.data : null,
  };
}

/** The parts of a stored job spec (packages/protocol jobSpecSchema) the planner needs. */
const plannedSpecSchema = z.object({
  cores: z.number().int().positive().default(1),
  memoryMiB: z.number().int().positive().default(1024),
  diskGiB: z.number().int().nonnegative().default(0),
  gpu: z.boolean().default(false),
  labels: z.array(z.string()).default([]),
  constraints: z
    .array(z.object({ attribute: z.string(), operator: z.enum(['==', '!=', 'in', 'not_in', 'exists', 'not_exists']), value: z.union([z.string(), z.array(z.string())]).optional() }))
    .default([]),
  retries: z.number().int().nonnegative().default(2),
  checkpointable: z.boolean().default(true),
});

export type JobRecord = Pick<
  BatchJobRow,
  'id' | 'poolId' | 'submitterUserId' | 'submittedBy' | 'priority' | 'deadline' | 'spec' | 'createdAt' | 'cancelRequestedAt'
>;

export interface PlannedJob {
  job: BatchJob;
  /** Every task of the job asks for this much. */
  taskResources: Resources;
}

export function jobFromRow(row: JobRecord): PlannedJob {
  const spec = plannedSpecSchema.safeParse(row.spec);
  if (!spec.success) throw new UnreadableRowError('batch job', row.id, spec.error.issues.map((i) => `spec.${i.path.join('.')}: ${i.message}`).join('; '));
  const s = spec.data;
  return {
    job: {
      id: row.id,
      poolId: row.poolId,
      submitterId: row.submitterUserId ?? row.submittedBy,
      priority: row.priority,
      deadline: ms(row.deadline),
      checkpointable: s.checkpointable,
      maxRetries: s.retries,
      submittedAt: row.createdAt.getTime(),
      constraints: { labels: labelsToRecord(s.labels), ...(s.constraints.length ? { rules: s.constraints } : {}) },
      cancelled: row.cancelRequestedAt !== null,
    },
    taskResources: { cores: s.cores, memoryMiB: s.memoryMiB, diskGiB: s.diskGiB, gpus: s.gpu ? 1 : 0 },
  };
}

type TaskStateRow = BatchTaskRow['state'];

const TASK_STATE_TO_CORE: Record<TaskStateRow, TaskState> = {
  queued: 'QUEUED',
  // "placed" is the API's word for a task sent to a host that has not confirmed the start yet:
  // to the planner it already holds the host's resources.
  placed: 'RUNNING',
  running: 'RUNNING',
  checkpointing: 'CHECKPOINTING',
  checkpointed: 'CHECKPOINTED',
  stopping: 'STOPPING',
  succeeded: 'SUCCEEDED',
  failed: 'FAILED',
  cancelled: 'CANCELLED',
  deadline_missed: 'FAILED',
};

const TASK_STATE_TO_ROW: Record<TaskState, TaskStateRow> = {
  QUEUED: 'queued',
  RUNNING: 'running',
  CHECKPOINTING: 'checkpointing',
  CHECKPOINTED: 'checkpointed',
  STOPPING: 'stopping',
  SUCCEEDED: 'succeeded',
  FAILED: 'failed',
  CANCELLED: 'cancelled',
};

export const taskStateToCore = (s: TaskStateRow): TaskState => TASK_STATE_TO_CORE[s];
export const taskStateToRow = (s: TaskState): TaskStateRow => TASK_STATE_TO_ROW[s];

export type TaskRecord = Pick<
  BatchTaskRow,
  'id' | 'jobId' | 'state' | 'hostId' | 'generation' | 'attempts' | 'restarts' | 'checkpointHostId' | 'checkpointPath' | 'afterStop'
>;

export function checkpointFromRow(row: Pick<BatchTaskRow, 'checkpointHostId' | 'checkpointPath'>): CheckpointLocation | null {
  if (row.checkpointHostId) return { kind: 'local', hostId: row.checkpointHostId };
  if (row.checkpointPath) return { kind: 'shared' };
  return null;
}

export function taskFromRow(row: TaskRecord, resources: Resources): BatchTask {
  return {
    id: row.id,
    jobId: row.jobId,
    resources,
    state: taskStateToCore(row.state),
    hostId: row.hostId,
    generation: row.generation,
    attempts: row.attempts,
    restarts: row.restarts,
    checkpoint: checkpointFromRow(row),
    afterStop: row.afterStop === 'requeue' || row.afterStop === 'cancel' ? row.afterStop : null,
  };
}

/** What the `planned` column holds: the core's command, enough to rebuild the in-flight operation. */
const plannedSchema = z
  .object({
    type: z.string(),
    subject: z.object({ kind: z.enum(['vm', 'task', 'host']), id: z.string() }),
  })
  .loose();

export type OperationRecord = Pick<OperationRow, 'idempotencyKey' | 'hostId' | 'generation' | 'planned' | 'createdAt'>;

/** An in-flight operation as the planner knows it; its id is the command's idempotency key. */
export function operationFromRow(row: OperationRecord): Operation {
  const planned = plannedSchema.safeParse(row.planned);
  if (!planned.success) throw new UnreadableRowError('operation', row.idempotencyKey, 'its planned command is missing or malformed');
  return {
    id: row.idempotencyKey,
    type: planned.data.type as OperationType,
    subject: planned.data.subject,
    hostId: row.hostId,
    generation: row.generation,
    startedAt: row.createdAt.getTime(),
  };
}

/** What goes into `planned`: the command plus its subject, so the operation can be rebuilt. */
export function plannedOf(cmd: Command, subject: Operation['subject']): Record<string, unknown> {
  return { ...cmd, subject };
}

/**
 * `planned` of the source half of a live migration: not a planner operation (the snapshot skips
 * it), but it names its event, so a re-run of that event publishes it if it was never sent.
 */
export function companionPlanned(companionOf: string, cmd: Command): Record<string, unknown> {
  return { companionOf, cause: cmd.cause };
}

/** The row is the source half of a live migration (see companionPlanned). */
export function isCompanionOperation(planned: unknown): boolean {
  return typeof planned === 'object' && planned !== null && typeof (planned as { companionOf?: unknown }).companionOf === 'string';
}

// ---------------------------------------------------------------- core changes → columns

/** Context a few columns need beyond the changed fields themselves. */
export interface ColumnContext {
  /** The entity's libvirt name (desktops): saved-state paths are derived from it. */
  name?: string;
  now: Date;
}

type Data = Record<string, unknown>;

function savedStateColumns(loc: SavedStateLocation | null, name: string | undefined): Data {
  if (loc === null) return { savedStateHostId: null, savedStatePath: null };
  const path = name ? savedStatePathOf(name) : null;
  return loc.kind === 'local' ? { savedStateHostId: loc.hostId, savedStatePath: path } : { savedStateHostId: null, savedStatePath: path ?? 'shared' };
}

function checkpointColumns(loc: CheckpointLocation | null, taskId: string): Data {
  if (loc === null) return { checkpointHostId: null, checkpointPath: null };
  return loc.kind === 'local' ? { checkpointHostId: loc.hostId, checkpointPath: checkpointPathOf(taskId) } : { checkpointHostId: null, checkpointPath: checkpointPathOf(taskId) };
}

const dateOrNull = (v: unknown): Date | null => (typeof v === 'number' ? new Date(v) : null);

/**
 * The column changes for a core `update` of one entity. Throws UnmappedFieldError for a field
 * the database cannot hold, so a silent loss of planner state cannot happen.
 */
export function columnsForUpdate(entity: EntityKind, id: string, set: Record<string, unknown>, ctx: ColumnContext): Data {
  const data: Data = {};
  for (const [field, value] of Object.entries(set)) {
    switch (`${entity}.${field}`) {
      case 'vms.state':
        data.state = value;
        data.stateChangedAt = ctx.now;
        break;
      case 'vms.pinned':
        data.pinned = value;
        break;
      case 'vms.hostId':
        data.currentHostId = value;
        break;
      case 'vms.sourceHostId':
        data.sourceHostId = value;
        break;
      case 'vms.desiredHostId':
        data.desiredHostId = value;
        break;
      case 'vms.generation':
        data.fencingGeneration = value;
        break;
      case 'vms.savedState':
        Object.assign(data, savedStateColumns(value as SavedStateLocation | null, ctx.name));
        break;
      case 'vms.augmented': {
        const a = value as { cores: number; memoryMiB: number } | null;
        data.augmentedVcpus = a?.cores ?? 0;
        data.augmentedMemoryMiB = a?.memoryMiB ?? 0;
        break;
      }
      case 'hosts.presence':
        data.presenceState = value;
        break;
      case 'hosts.presenceSince':
        data.presenceSince = dateOrNull(value);
        break;
      case 'hosts.online':
        data.onlineState = value ? 'online' : 'offline';
        break;
      case 'hosts.needsReconcile':
        data.needsReconcile = value;
        break;
      case 'hosts.asleep':
        data.asleep = value;
        break;
      case 'hosts.draining':
        data.drained = value;
        break;
      case 'users.arrivals':
        data.arrivals = (value as number[]).map((t) => new Date(t));
        break;
      case 'users.preStage':
        data.preStage = value ?? null;
        break;
      case 'pools.preStageBudget':
        data.preStageBudget = value;
        break;
      case 'tasks.state': {
        const state = taskStateToRow(value as TaskState);
        data.state = state;
        if (state === 'running') data.startedAt = ctx.now;
        if (state === 'succeeded' || state === 'failed' || state === 'cancelled') data.finishedAt = ctx.now;
        break;
      }
      case 'tasks.hostId':
        data.hostId = value;
        break;
      case 'tasks.generation':
        data.generation = value;
        break;
      case 'tasks.attempts':
        data.attempts = value;
        break;
      case 'tasks.restarts':
        data.restarts = value;
        break;
      case 'tasks.afterStop':
        data.afterStop = value;
        break;
      case 'tasks.checkpoint':
        Object.assign(data, checkpointColumns(value as CheckpointLocation | null, id));
        break;
      case 'jobs.cancelled':
        data.cancelRequestedAt = value ? ctx.now : null;
        break;
      default:
        throw new UnmappedFieldError(entity, field);
    }
  }
  return data;
}
