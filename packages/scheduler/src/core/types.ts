// Plain data in, plain data out: everything the planning core reads and writes.
// Times are epoch milliseconds; the caller passes `now`, the core never reads a clock.

export type Millis = number;

export interface Resources {
  cores: number;
  memoryMiB: number;
  diskGiB: number;
  gpus: number;
}

export type StorageMode = 'shared' | 'local';
/** When batch work may run on a pool's PCs at all (owner presence limits it further). */
export type BatchWindow = 'never' | 'outsideOfficeHours' | 'always';

/** Local wall-clock window "HH:MM"–"HH:MM" in the pool's time zone; may wrap midnight. */
export interface ClockWindow {
  start: string;
  end: string;
}

export interface PoolPolicy {
  timeZone: string;
  /** Days are 0 = Sunday … 6 = Saturday. */
  officeHours: { days: number[]; start: string; end: string };
  idleThresholdMs: number;
  nightWindow: ClockWindow;
  /** Suspend idle desktops at any time of day, not only inside the night window. */
  suspendIdleAnyTime: boolean;
  batchWindow: BatchWindow;
  /** Fraction (0..1) of a PC's cores/memory batch may hold while its owner is present. */
  maxBatchShareWhileOwnerPresent: number;
  preStaging: {
    enabled: boolean;
    /** Restore this long before the predicted arrival. */
    leadMs: Millis;
    /** Batch core-milliseconds the pool may give up per local day for pre-staging. */
    dailyBudgetCoreMs: number;
    historyWeeks: number;
  };
  powerManagement: boolean;
  storageMode: StorageMode;
  /** How long a batch VM gets to checkpoint before the agent stops it hard. */
  checkpointGraceMs: Millis;
  /** Batch is moved off owned PCs this long before office hours or a predicted arrival. */
  morningDrainLeadMs: Millis;
  augment: { enabled: boolean; maxExtraCores: number; maxExtraMemoryMiB: number };
}

export interface Pool {
  id: string;
  policy: PoolPolicy;
  /** Batch time given up for pre-staging on `localDate` (pool time zone). */
  preStageBudget: { localDate: string; usedCoreMs: number };
}

export type Presence = 'present' | 'idle' | 'unknown';

export interface Host {
  id: string;
  poolId: string;
  resources: Resources;
  labels: Record<string, string>;
  /** Facts placement constraints may test besides labels: `host.name`, `cpu.model`, `gpu`. */
  attributes?: Record<string, string>;
  online: boolean;
  /** Set when the host went silent; cleared only by a confirmed reconcileHost. */
  needsReconcile: boolean;
  presence: Presence;
  presenceSince: Millis;
  draining: boolean;
  asleep: boolean;
  ownerUserId: string | null;
}

export type VmState = 'RUNNING' | 'SUSPENDING' | 'SUSPENDED' | 'RESTORING' | 'MIGRATING' | 'STOPPED' | 'LOST';

export type SavedStateLocation = { kind: 'shared' } | { kind: 'local'; hostId: string };

export interface DesktopVm {
  id: string;
  ownerUserId: string;
  poolId: string;
  state: VmState;
  pinned: boolean;
  /**
   * RUNNING/SUSPENDING: where it runs. RESTORING/MIGRATING: the target.
   * LOST: the host it was last seen on. SUSPENDED/STOPPED: null.
   */
  hostId: string | null;
  /**
   * MIGRATING: the host it is leaving. LOST: the other host it may be on (lost mid-migration).
   */
  sourceHostId: string | null;
  savedState: SavedStateLocation | null;
  /** Fencing generation: bumped by every lifecycle command; agents refuse older ones. */
  generation: number;
  size: Resources;
  /** Resources hot-added on top of `size` (augment), or null. */
  augmented: { cores: number; memoryMiB: number } | null;
  /** A person is waiting for this desktop at this host (e.g. tapped during a suspend). */
  desiredHostId: string | null;
}

export interface User {
  id: string;
  poolId: string;
  homeHostId: string | null;
  /** First-tap times of past days (epoch ms), any order. */
  arrivals: Millis[];
  /** Last pre-staging done for this user, to compare prediction with the actual arrival. */
  preStage: { localDate: string; predictedAt: Millis; stagedAt: Millis } | null;
}

export interface BatchJob {
  id: string;
  /** null: any pool. */
  poolId: string | null;
  submitterId: string;
  priority: number;
  deadline: Millis | null;
  checkpointable: boolean;
  maxRetries: number;
  submittedAt: Millis;
  /** Host labels every task of the job needs (exact match), and attribute rules. */
  constraints: { labels: Record<string, string>; rules?: ConstraintRule[] };
  cancelled: boolean;
}

/**
 * A placement rule on a host attribute (`label.<name>` or one of Host.attributes). A host
 * without the attribute satisfies only `!=`, `not_in` and `not_exists`.
 */
export interface ConstraintRule {
  attribute: string;
  operator: '==' | '!=' | 'in' | 'not_in' | 'exists' | 'not_exists';
  value?: string | string[];
}

export type TaskState =
  | 'QUEUED'
  | 'RUNNING'
  | 'CHECKPOINTING'
  | 'CHECKPOINTED'
  | 'STOPPING'
  | 'SUCCEEDED'
  | 'FAILED'
  | 'CANCELLED';

export type CheckpointLocation = { kind: 'shared' } | { kind: 'local'; hostId: string };

export interface BatchTask {
  id: string;
  jobId: string;
  resources: Resources;
  state: TaskState;
  /** RUNNING/CHECKPOINTING/STOPPING: where it is. Otherwise null. */
  hostId: string | null;
  generation: number;
  /** Failed runs so far (preemption does not count). */
  attempts: number;
  /** Times the task was started over from zero because it was preempted. */
  restarts: number;
  checkpoint: CheckpointLocation | null;
  /** STOPPING only: what happens once it is stopped. */
  afterStop: 'requeue' | 'cancel' | null;
}

export type OperationType =
  | 'suspendDesktop'
  | 'restoreDesktop'
  | 'migrateDesktop'
  | 'moveSavedState'
  | 'deleteSavedState'
  | 'checkpointBatch'
  | 'stopBatch'
  | 'placeTask'
  | 'resumeTask'
  | 'moveCheckpoint'
  | 'hotplug'
  | 'sleepHost'
  | 'wakeHost'
  | 'reconcileHost';

/** A command sent and not yet answered. Its id is the command's idempotency key. */
export interface Operation {
  id: string;
  type: OperationType;
  subject: { kind: 'vm' | 'task' | 'host'; id: string };
  hostId: string;
  generation: number;
  startedAt: Millis;
}

export interface Snapshot {
  pools: Record<string, Pool>;
  hosts: Record<string, Host>;
  vms: Record<string, DesktopVm>;
  users: Record<string, User>;
  jobs: Record<string, BatchJob>;
  tasks: Record<string, BatchTask>;
  operations: Record<string, Operation>;
}

export type EntityKind = keyof Snapshot;
export type EntityOf<K extends EntityKind> = Snapshot[K][string];

// ---------------------------------------------------------------- events

export type TimerKind = 'idleCheck' | 'nightStart' | 'preStage' | 'power' | 'morningDrain' | 'placement';

interface EventBase {
  /** Unique per event; seeds idempotency keys so replaying an event yields the same keys. */
  id: string;
}

export type SchedulerEvent =
  | (EventBase & { type: 'presence'; hostId: string; presence: 'present' | 'idle' })
  | (EventBase & { type: 'signIn'; userId: string; hostId: string })
  | (EventBase & { type: 'heartbeatLost'; hostId: string })
  | (EventBase & { type: 'hostBack'; hostId: string })
  /** An admin confirmed the host is powered off, so its desktops cannot still be running. */
  | (EventBase & { type: 'hostFenced'; hostId: string })
  | (EventBase & {
      type: 'operationResult';
      operationId: string;
      outcome: 'succeeded' | 'failed';
      generation: number;
      error?: string;
      /** reconcileHost only: desktop VMs the agent found running. */
      foundRunningVmIds?: string[];
      /** reconcileHost only: batch tasks the agent found running (held since the host was lost). */
      foundRunningTaskIds?: string[];
    })
  | (EventBase & { type: 'taskFinished'; taskId: string; generation: number; outcome: 'succeeded' | 'failed' })
  | (EventBase & { type: 'tick'; timer: TimerKind })
  | (EventBase & { type: 'pin'; vmId: string; pinned: boolean })
  | (EventBase & { type: 'resourcePressure'; vmId: string; starved: boolean })
  | (EventBase & { type: 'jobSubmitted'; job: BatchJob; tasks: BatchTask[] })
  | (EventBase & { type: 'jobCancelled'; jobId: string });

export type SchedulerEventType = SchedulerEvent['type'];

// ---------------------------------------------------------------- actions

export interface Cause {
  eventId: string;
  event: SchedulerEventType;
  /** The policy rule that decided, e.g. "desktop.idleSuspend". */
  rule: string;
}

interface ActionBase {
  /** Deterministic idempotency key; for commands also the operation id. */
  key: string;
  cause: Cause;
}

interface CommandBase extends ActionBase {
  /** Host that must carry the command out. */
  hostId: string;
  /** Fencing generation the agent must check. */
  generation: number;
  /** Keys of commands the agent must finish on this plan first (same host or chained). */
  after: string[];
}

export type Command =
  | (CommandBase & { type: 'suspendDesktop'; vmId: string; saveTo: SavedStateLocation })
  | (CommandBase & {
      type: 'restoreDesktop';
      vmId: string;
      from: SavedStateLocation | { kind: 'coldBoot' };
    })
  | (CommandBase & { type: 'migrateDesktop'; vmId: string; fromHostId: string })
  | (CommandBase & { type: 'moveSavedState'; vmId: string; fromHostId: string; toHostId: string })
  | (CommandBase & { type: 'deleteSavedState'; vmId: string; location: SavedStateLocation })
  | (CommandBase & { type: 'checkpointBatch'; taskId: string; graceMs: Millis; saveTo: CheckpointLocation })
  | (CommandBase & { type: 'stopBatch'; taskId: string; then: 'requeue' | 'cancel' })
  | (CommandBase & { type: 'placeTask'; taskId: string; resources: Resources })
  | (CommandBase & { type: 'resumeTask'; taskId: string; resources: Resources; from: CheckpointLocation })
  /** Copies a task's checkpoint from the PC holding it (hostId) to the PC it resumes on; the resume follows its success. */
  | (CommandBase & { type: 'moveCheckpoint'; taskId: string; fromHostId: string; toHostId: string })
  | (CommandBase & { type: 'hotplug'; vmId: string; addCores: number; addMemoryMiB: number; undo: boolean })
  | (CommandBase & { type: 'sleepHost' })
  | (CommandBase & { type: 'wakeHost'; targetHostId: string })
  | (CommandBase & {
      type: 'reconcileHost';
      /** What the host may keep; everything else on it is destroyed before it starts anything. */
      expect: { vms: { vmId: string; generation: number }[]; tasks: { taskId: string; generation: number }[] };
    });

export type CommandType = Command['type'];

/** A state change to commit (and to write to the audit trail with its cause). */
export interface TransitionRecord extends ActionBase {
  type: 'recordTransition';
  entity: EntityKind;
  id: string;
  op: 'create' | 'update' | 'delete';
  from?: string;
  to?: string;
  /** create: the whole entity; update: the fields that change. */
  set: Record<string, unknown>;
}

export interface MarkLostAction extends ActionBase {
  type: 'markLost';
  vmId: string;
  lastHostId: string;
  generation: number;
}

/** Pre-staging report: what was predicted against what happened. */
export interface ArrivalReport extends ActionBase {
  type: 'reportArrival';
  userId: string;
  predictedAt: Millis | null;
  actualAt: Millis;
  desktopWasRunning: boolean;
}

export type Action = Command | TransitionRecord | MarkLostAction | ArrivalReport;

export interface Reason {
  code: string;
  message: string;
  subject?: { kind: EntityKind; id: string };
}

export interface Plan {
  actions: Action[];
  reasons: Reason[];
}
