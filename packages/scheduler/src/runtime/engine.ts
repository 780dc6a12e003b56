// One event, end to end: find its pool, lock it, load, plan, commit, then dispatch.
import type { PrismaClient } from '@deskpool/db';
import type { Redis } from 'ioredis';
import { plan } from '../core/plan.js';
import { DEFAULT_SETTINGS, type PlannerSettings } from '../core/settings.js';
import type { SchedulerEvent } from '../core/types.js';
import { commitPlan, StaleSnapshotError, type CommitResult, type PlannedDispatch } from './commit.js';
import { dispatchCommands, DEFAULT_AGENT_CHANNEL_PREFIX, undispatchedOfEvent } from './dispatch.js';
import type { RuntimeEvent } from './events.js';
import { loadFocusedSnapshot, loadSnapshot, type Db, type LoadedSnapshot, type Scope } from './snapshot.js';
import type { FocusedEvent } from './focus.js';
import { migrateInKeyOf } from './commands.js';
import { isCompanionOperation } from './mapping.js';

/** Time as the scheduler sees it: injected so tests and the simulator control it. */
export interface Clock {
  now(): number;
}
export const systemClock: Clock = { now: () => Date.now() };

export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}
export const silentLogger: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };

export interface EngineOptions {
  prisma: PrismaClient;
  /** Publishes command frames (a normal, non-subscriber connection). */
  redis: Redis;
  clock?: Clock;
  settings?: PlannerSettings;
  /** Prefix of the per-host command channels; the agent gateway subscribes to the same. */
  channelPrefix?: string;
  /** How often a plan rejected as stale is made again from a fresh snapshot. */
  maxReplans?: number;
  logger?: Logger;
  /** Test hook: runs inside the transaction after planning, before the plan is written. */
  beforeCommit?: (event: RuntimeEvent, attempt: number) => Promise<void> | void;
  /** Test hook: runs after the commit and before dispatch (e.g. to simulate a crash there). */
  afterCommit?: (event: RuntimeEvent, result: CommitResult) => Promise<void> | void;
}

export type HandleOutcome =
  | { status: 'ignored'; reason: string }
  | { status: 'duplicate' }
  | { status: 'committed'; transitions: number; operations: number; dispatched: number; replans: number; reasons: string[] };

/** Every re-plan failed: something keeps changing the same rows. The queue retries later. */
export class ReplanLimitError extends Error {
  constructor(eventId: string, attempts: number, cause: unknown) {
    super(`Event ${eventId} was re-planned ${attempts} times and each plan went stale; it is retried later with backoff`, { cause });
    this.name = 'ReplanLimitError';
  }
}

/** Pool ids whose state an event can touch, or null when its subject does not exist. */
export async function scopeOf(db: Db, event: RuntimeEvent): Promise<Scope | null> {
  const hostPool = async (hostId: string): Promise<Scope | null> => {
    const host = await db.host.findUnique({ where: { id: hostId }, select: { poolId: true } });
    return host ? { poolIds: [host.poolId] } : null;
  };
  const jobPool = async (jobId: string): Promise<Scope | null> => {
    const job = await db.batchJob.findUnique({ where: { id: jobId }, select: { poolId: true } });
    if (!job) return null;
    return job.poolId ? { poolIds: [job.poolId] } : 'all';
  };
  switch (event.type) {
    case 'presence':
    case 'signIn':
    case 'heartbeatLost':
    case 'hostBack':
    case 'hostFenced':
      return hostPool(event.hostId);
    case 'operationResult': {
      const op = await db.operation.findUnique({ where: { idempotencyKey: event.idempotencyKey }, select: { hostId: true } });
      return op ? hostPool(op.hostId) : null;
    }
    case 'taskFinished': {
      const task = await db.batchTask.findUnique({ where: { id: event.taskId }, select: { hostId: true, jobId: true } });
      if (!task) return null;
      return task.hostId ? hostPool(task.hostId) : jobPool(task.jobId);
    }
    case 'pin':
    case 'resourcePressure': {
      const vm = await db.desktopVm.findUnique({ where: { id: event.vmId }, select: { poolId: true } });
      return vm ? { poolIds: [vm.poolId] } : null;
    }
    case 'jobSubmitted':
    case 'jobCancelled':
      return jobPool(event.jobId);
    case 'tick': {
      const pool = await db.pool.findUnique({ where: { id: event.poolId }, select: { id: true } });
      return pool ? { poolIds: [pool.id] } : null;
    }
  }
}

/** The core's event for a queued one, or a reason why there is nothing to plan. */
export async function coreEventOf(db: Db, event: RuntimeEvent, loaded: LoadedSnapshot): Promise<SchedulerEvent | string> {
  switch (event.type) {
    case 'operationResult': {
      const op = await db.operation.findUnique({ where: { idempotencyKey: event.idempotencyKey }, select: { generation: true, planned: true } });
      if (!op) return `no operation ${event.idempotencyKey}`;
      if (isCompanionOperation(op.planned)) {
        // The source half of a live migration: its success is confirmed by the target's answer;
        // its failure is the migration's (the desktop is still on the source), reported at once
        // rather than after the target's arrival timeout.
        const migrateIn = migrateInKeyOf(event.idempotencyKey);
        if (event.outcome === 'succeeded' || !migrateIn) return `migrate-out ${event.idempotencyKey} ${event.outcome}; the target's answer settles the migration`;
        return {
          type: 'operationResult',
          id: event.id,
          operationId: migrateIn,
          outcome: 'failed',
          generation: event.generation ?? op.generation,
          error: `migrate-out failed on the source: ${event.error ?? event.outcome}`.slice(0, 2000),
        };
      }
      return {
        type: 'operationResult',
        id: event.id,
        operationId: event.idempotencyKey,
        // The agent refused a fenced command: to the planner that is a failure of that command.
        outcome: event.outcome === 'succeeded' ? 'succeeded' : 'failed',
        generation: event.generation ?? op.generation,
        ...(event.error !== undefined ? { error: event.error } : {}),
        ...(event.foundRunningVmIds !== undefined ? { foundRunningVmIds: event.foundRunningVmIds } : {}),
        ...(event.foundRunningTaskIds !== undefined ? { foundRunningTaskIds: event.foundRunningTaskIds } : {}),
      };
    }
    case 'jobSubmitted': {
      const job = loaded.snapshot.jobs[event.jobId];
      if (!job) return `job ${event.jobId} is not active`;
      // The API created the job and its tasks; the planner sees them in the snapshot and places them.
      return { type: 'jobSubmitted', id: event.id, job, tasks: [] };
    }
    case 'tick':
      return { type: 'tick', id: event.id, timer: event.timer };
    default:
      return event;
  }
}

/** Events about one PC and the person at it, planned from focusSnapshot (focus.ts), not the whole pool. */
export function focusOf(event: RuntimeEvent): FocusedEvent | null {
  if (event.type === 'presence') return { hostId: event.hostId, userId: null };
  if (event.type === 'signIn') return { hostId: event.hostId, userId: event.userId };
  return null;
}

/** The snapshot an event is planned from: its focused subset when that is enough, else its pools. */
async function loadFor(db: Db, event: RuntimeEvent, scope: Scope): Promise<LoadedSnapshot> {
  const focus = focusOf(event);
  // A user id that is no UUID names nobody: the whole pool's plan says so (unknownSubject).
  if (focus && scope !== 'all' && scope.poolIds.length === 1 && (focus.userId === null || UUID.test(focus.userId))) {
    const focused = await loadFocusedSnapshot(db, scope.poolIds[0] as string, focus, event.id);
    if (focused) return focused;
  }
  return loadSnapshot(db, scope);
}

function isUniqueViolation(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'P2002';
}

/** Serializes work on a pool across every worker: held until the transaction ends, even by a crash. */
async function lockPools(db: Db, scope: Scope): Promise<void> {
  const poolIds = scope === 'all' ? (await db.pool.findMany({ select: { id: true }, orderBy: { id: 'asc' } })).map((p) => p.id) : [...scope.poolIds].sort();
  for (const poolId of poolIds) {
    const key = `deskpool:pool:${poolId}`;
    await db.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${key}, 0))`;
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** lockPools for the pool of one PC, found and locked in one statement; null when there is no such PC. */
async function lockPoolOfHost(db: Db, hostId: string): Promise<string | null> {
  if (!UUID.test(hostId)) return null;
  const rows = await db.$queryRaw<{ pool_id: string }[]>`
    SELECT h.pool_id::text AS pool_id
    FROM hosts AS h, LATERAL (SELECT pg_advisory_xact_lock(hashtextextended('deskpool:pool:' || h.pool_id::text, 0))) AS locked
    WHERE h.id = ${hostId}::uuid`;
  return rows[0]?.pool_id ?? null;
}

export class SchedulerEngine {
  private readonly clock: Clock;
  private readonly settings: PlannerSettings;
  private readonly channelPrefix: string;
  private readonly maxReplans: number;
  private readonly log: Logger;

  constructor(private readonly options: EngineOptions) {
    this.clock = options.clock ?? systemClock;
    this.settings = options.settings ?? DEFAULT_SETTINGS;
    this.channelPrefix = options.channelPrefix ?? DEFAULT_AGENT_CHANNEL_PREFIX;
    this.maxReplans = options.maxReplans ?? 5;
    this.log = options.logger ?? silentLogger;
  }

  /** Publishes this plan's commands and any an earlier, interrupted run of the event left unsent. */
  private async dispatch(event: RuntimeEvent, planned: PlannedDispatch[], unsentBefore?: PlannedDispatch[]): Promise<number> {
    const leftovers = unsentBefore ?? (await undispatchedOfEvent(this.options.prisma, event.id));
    const seen = new Set(planned.map((d) => d.operationId));
    const all = [...planned, ...leftovers.filter((d) => !seen.has(d.operationId))];
    return dispatchCommands(this.options.prisma, this.options.redis, this.channelPrefix, all, this.clock, this.log);
  }

  async handle(event: RuntimeEvent): Promise<HandleOutcome> {
    const { prisma } = this.options;
    const focus = focusOf(event);
    // A one-PC event finds and locks its pool inside the transaction, in one statement.
    const outerScope = focus ? null : await scopeOf(prisma, event);
    const missing = `the subject of ${event.type} ${event.id} does not exist`;
    if (!focus && !outerScope) return { status: 'ignored', reason: missing };
    let lastStale: unknown;
    for (let attempt = 0; attempt <= this.maxReplans; attempt += 1) {
      try {
        const outcome = await prisma.$transaction(
          async (tx) => {
            let scope: Scope;
            if (outerScope) {
              scope = outerScope;
              await lockPools(tx, scope);
            } else {
              const poolId = await lockPoolOfHost(tx, (focus as FocusedEvent).hostId);
              if (!poolId) return { kind: 'ignored', reason: missing } as const;
              scope = { poolIds: [poolId] };
            }
            const loaded = await loadFor(tx, event, scope);
            const core = await coreEventOf(tx, event, loaded);
            if (typeof core === 'string') return { kind: 'ignored', reason: core } as const;
            const now = this.clock.now();
            const p = plan(loaded.snapshot, core, this.settings, now);
            await this.options.beforeCommit?.(event, attempt);
            // What an interrupted earlier run of this event committed but never sent, read
            // before this plan's own operations exist: a placement round's thousands of fresh
            // operations are then not read back just to be told apart from the leftovers.
            const unsentBefore = loaded.unsentOfEvent ?? (await undispatchedOfEvent(tx, event.id));
            const result = await commitPlan(tx, p, loaded, new Date(now));
            return { kind: 'planned', result, unsentBefore, reasons: p.reasons.map((r) => `${r.code}: ${r.message}`) } as const;
          },
          { maxWait: 10_000, timeout: 60_000 },
        );
        if (outcome.kind === 'ignored') return { status: 'ignored', reason: outcome.reason };
        const { result, reasons, unsentBefore } = outcome;
        if (!result.duplicate) await this.options.afterCommit?.(event, result);
        const dispatched = await this.dispatch(event, result.dispatches, unsentBefore);
        if (result.duplicate) return { status: 'duplicate' };
        return { status: 'committed', transitions: result.transitions, operations: result.dispatches.length, dispatched, replans: attempt, reasons };
      } catch (err) {
        // Another writer inserted one of this plan's operations first: the event was handled.
        if (isUniqueViolation(err)) {
          await this.dispatch(event, []);
          return { status: 'duplicate' };
        }
        if (!(err instanceof StaleSnapshotError)) throw err;
        lastStale = err;
        this.log.info({ eventId: event.id, entity: err.entity, id: err.id, attempt }, 'plan went stale; re-planning');
      }
    }
    throw new ReplanLimitError(event.id, this.maxReplans + 1, lastStale);
  }
}
