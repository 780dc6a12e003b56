// BullMQ queues and the publisher the API and the agent gateway use to hand events over.
import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import type { TIMER_KINDS } from './events.js';
import { idPart, parseRuntimeEvent, type RuntimeEvent } from './events.js';

/** Queue names (BullMQ keys are `<prefix>:<name>:…`). */
export const QUEUE_NAMES = {
  events: 'events',
  timers: 'timers',
  /** Events that failed every attempt: kept for people to look at and re-drive. */
  deadLetter: 'events-dead-letter',
} as const;

export const DEFAULT_QUEUE_PREFIX = 'deskpool';

export interface QueueConnection {
  /** ioredis options or an ioredis instance (BullMQ duplicates it for blocking commands). */
  connection: ConnectionOptions;
  /** Key prefix of every queue; tests use their own so they can run side by side. */
  prefix?: string;
}

/** Retries with exponential backoff; completed jobs are kept a while so duplicate ids are refused. */
export const EVENT_JOB_OPTIONS: JobsOptions = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: { age: 24 * 3600, count: 100_000 },
  removeOnFail: { age: 7 * 24 * 3600 },
};

/**
 * BullMQ priority (1 = first) by event type: a person at a PC is served before answers, and
 * answers before timers and batch work, so a backlog of placement ticks never delays a tap.
 */
export const EVENT_PRIORITY: Record<RuntimeEvent['type'], number> = {
  presence: 1,
  signIn: 1,
  operationResult: 2,
  heartbeatLost: 2,
  hostBack: 2,
  hostFenced: 2,
  pin: 2,
  taskFinished: 3,
  resourcePressure: 3,
  jobSubmitted: 4,
  jobCancelled: 3,
  tick: 4,
};

const atMs = (at: Date | number): number => (typeof at === 'number' ? at : at.getTime());

/**
 * Hands events to the scheduler workers. Every event gets a job id derived from what happened,
 * so publishing the same thing twice (a re-sent agent frame, a retried API call) queues it once;
 * should it run twice anyway, the idempotency keys of its operations make the second a no-op.
 */
export class SchedulerEvents {
  readonly queue: Queue;

  constructor(options: QueueConnection) {
    this.queue = new Queue(QUEUE_NAMES.events, { connection: options.connection, prefix: options.prefix ?? DEFAULT_QUEUE_PREFIX, defaultJobOptions: EVENT_JOB_OPTIONS });
  }

  /** Validates and queues one event; throws InvalidSchedulerEventError naming the bad field. */
  async publish(event: RuntimeEvent): Promise<void> {
    const valid = parseRuntimeEvent(event);
    await this.queue.add(valid.type, valid, { jobId: valid.id, priority: EVENT_PRIORITY[valid.type] });
  }

  publishPresence(p: { hostId: string; presence: 'present' | 'idle'; at: Date | number }): Promise<void> {
    return this.publish({ type: 'presence', id: `presence.${idPart(p.hostId)}.${p.presence}.${atMs(p.at)}`, hostId: p.hostId, presence: p.presence });
  }

  publishSignIn(p: { hostId: string; userId: string; at: Date | number }): Promise<void> {
    return this.publish({ type: 'signIn', id: `signin.${idPart(p.hostId)}.${idPart(p.userId)}.${atMs(p.at)}`, hostId: p.hostId, userId: p.userId });
  }

  /** An agent's op-result. `refused` (a fenced command) counts as failed for planning. */
  publishOperationResult(p: {
    idempotencyKey: string;
    outcome: 'succeeded' | 'failed' | 'refused';
    generation?: number;
    error?: string;
    foundRunningVmIds?: string[];
    foundRunningTaskIds?: string[];
  }): Promise<void> {
    return this.publish({
      type: 'operationResult',
      id: `result.${idPart(p.idempotencyKey)}.${p.outcome}`,
      idempotencyKey: p.idempotencyKey,
      outcome: p.outcome,
      ...(p.generation !== undefined ? { generation: p.generation } : {}),
      ...(p.error !== undefined ? { error: p.error } : {}),
      ...(p.foundRunningVmIds !== undefined ? { foundRunningVmIds: p.foundRunningVmIds } : {}),
      ...(p.foundRunningTaskIds !== undefined ? { foundRunningTaskIds: p.foundRunningTaskIds } : {}),
    });
  }

  /** `lastHeartbeatAt` ties the event to one silence, so each check of the same silence is one event. */
  publishHeartbeatLost(p: { hostId: string; lastHeartbeatAt: Date | number }): Promise<void> {
    return this.publish({ type: 'heartbeatLost', id: `hblost.${idPart(p.hostId)}.${atMs(p.lastHeartbeatAt)}`, hostId: p.hostId });
  }

  publishHostBack(p: { hostId: string; at: Date | number }): Promise<void> {
    return this.publish({ type: 'hostBack', id: `hostback.${idPart(p.hostId)}.${atMs(p.at)}`, hostId: p.hostId });
  }

  /** An admin confirmed the host is powered off. `requestId` identifies the admin's request. */
  publishHostFenced(p: { hostId: string; requestId: string }): Promise<void> {
    return this.publish({ type: 'hostFenced', id: `fenced.${idPart(p.hostId)}.${idPart(p.requestId)}`, hostId: p.hostId });
  }

  publishTaskFinished(p: { taskId: string; generation: number; outcome: 'succeeded' | 'failed' }): Promise<void> {
    return this.publish({ type: 'taskFinished', id: `taskdone.${idPart(p.taskId)}.g${p.generation}`, taskId: p.taskId, generation: p.generation, outcome: p.outcome });
  }

  /** "Keep my desktop running tonight" (or not). `requestId` identifies the API request. */
  publishPin(p: { vmId: string; pinned: boolean; requestId: string }): Promise<void> {
    return this.publish({ type: 'pin', id: `pin.${idPart(p.vmId)}.${idPart(p.requestId)}`, vmId: p.vmId, pinned: p.pinned });
  }

  publishResourcePressure(p: { vmId: string; starved: boolean; at: Date | number }): Promise<void> {
    return this.publish({ type: 'resourcePressure', id: `pressure.${idPart(p.vmId)}.${p.starved ? 1 : 0}.${atMs(p.at)}`, vmId: p.vmId, starved: p.starved });
  }

  publishJobSubmitted(p: { jobId: string }): Promise<void> {
    return this.publish({ type: 'jobSubmitted', id: `job.${idPart(p.jobId)}`, jobId: p.jobId });
  }

  publishJobCancelled(p: { jobId: string }): Promise<void> {
    return this.publish({ type: 'jobCancelled', id: `jobcancel.${idPart(p.jobId)}`, jobId: p.jobId });
  }

  /** A timer fired for a pool; `slot` numbers the timer's period so each period plans once. */
  publishTick(p: { timer: (typeof TIMER_KINDS)[number]; poolId: string; slot: number }): Promise<void> {
    return this.publish({ type: 'tick', id: `tick.${p.timer}.${idPart(p.poolId)}.${p.slot}`, timer: p.timer, poolId: p.poolId });
  }

  close(): Promise<void> {
    return this.queue.close();
  }
}

/** An event that failed every attempt, as kept on the dead-letter queue. */
export interface DeadLetter {
  jobId: string;
  event: unknown;
  failedReason: string;
  attemptsMade: number;
  failedAt: number;
}

export class DeadLetters {
  readonly queue: Queue;

  constructor(options: QueueConnection) {
    // Nothing consumes this queue: its jobs wait for a person (or a re-drive script).
    this.queue = new Queue(QUEUE_NAMES.deadLetter, { connection: options.connection, prefix: options.prefix ?? DEFAULT_QUEUE_PREFIX });
  }

  async add(letter: DeadLetter): Promise<void> {
    await this.queue.add('dead-letter', letter, { jobId: letter.jobId, removeOnComplete: false, removeOnFail: false });
  }

  async list(limit = 100): Promise<DeadLetter[]> {
    const jobs = await this.queue.getJobs(['waiting', 'prioritized', 'delayed'], 0, limit - 1, true);
    return jobs.map((j) => j.data as DeadLetter);
  }

  close(): Promise<void> {
    return this.queue.close();
  }
}
