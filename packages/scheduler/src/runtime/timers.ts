// What each repeatable timer does when it fires. Planning timers fan out into one tick event
// per pool (each pool is planned under its own lock); housekeeping timers act directly.
import { Prisma, type PrismaClient } from '@deskpool/db';
import { reconcileResultSchema } from '@deskpool/protocol';
import type { Redis } from 'ioredis';
import type { Clock } from './engine.js';
import { redispatchStale } from './dispatch.js';
import { TIMER_KINDS } from './events.js';
import type { SchedulerEvents } from './queues.js';

export const HOUSEKEEPING_TIMERS = ['heartbeatCheck', 'redispatch', 'resultSweep'] as const;
export const ALL_TIMERS = [...TIMER_KINDS, ...HOUSEKEEPING_TIMERS] as const;
export type RuntimeTimer = (typeof ALL_TIMERS)[number];

export interface TimerSettings {
  /** How often each timer fires (ms). */
  intervalsMs: Record<RuntimeTimer, number>;
  /** A host silent this long is declared lost. */
  heartbeatTimeoutMs: number;
  /** Operations still unpublished after this long are published again. */
  redispatchAfterMs: number;
}

export const DEFAULT_TIMER_SETTINGS: TimerSettings = {
  intervalsMs: {
    idleCheck: 60_000,
    nightStart: 5 * 60_000,
    preStage: 60_000,
    power: 5 * 60_000,
    morningDrain: 60_000,
    placement: 10_000,
    heartbeatCheck: 15_000,
    redispatch: 30_000,
    resultSweep: 60_000,
  },
  heartbeatTimeoutMs: 90_000,
  redispatchAfterMs: 30_000,
};

export interface TimerDeps {
  prisma: PrismaClient;
  redis: Redis;
  events: SchedulerEvents;
  clock: Clock;
  channelPrefix: string;
  settings: TimerSettings;
}

export interface TimerResult {
  /** Events queued (ticks, heartbeat losses, hosts back) or commands re-published. */
  count: number;
}

/**
 * Hosts silent past the timeout become `heartbeatLost` events (one per silence: the event id
 * carries the last heartbeat's time); fenced hosts heard from again become `hostBack`.
 */
export async function checkHeartbeats(deps: TimerDeps): Promise<TimerResult> {
  const now = deps.clock.now();
  const cutoff = new Date(now - deps.settings.heartbeatTimeoutMs);
  const silent = await deps.prisma.host.findMany({
    where: { needsReconcile: false, asleep: false, lastHeartbeatAt: { lt: cutoff } },
    select: { id: true, lastHeartbeatAt: true },
  });
  for (const h of silent) await deps.events.publishHeartbeatLost({ hostId: h.id, lastHeartbeatAt: h.lastHeartbeatAt ?? 0 });
  const back = await deps.prisma.host.findMany({
    where: { needsReconcile: true, onlineState: 'online', lastHeartbeatAt: { gte: cutoff } },
    select: { id: true, lastHeartbeatAt: true },
  });
  let backCount = 0;
  for (const h of back) {
    // A reconcile already asked for: wait for its answer instead of asking again.
    const inFlight = await deps.prisma.operation.count({ where: { hostId: h.id, settledAt: null, planned: { path: ['type'], equals: 'reconcileHost' } } });
    if (inFlight > 0) continue;
    await deps.events.publishHostBack({ hostId: h.id, at: h.lastHeartbeatAt ?? now });
    backCount += 1;
  }
  return { count: silent.length + backCount };
}

// Tasks are optional here: an answer recorded before agents reported them still counts.
const foundRunningSchema = reconcileResultSchema.pick({ foundRunningVmIds: true }).extend({ foundRunningTaskIds: reconcileResultSchema.shape.foundRunningTaskIds.optional() });

/**
 * Answers the gateway recorded on operations (status succeeded/failed/refused) that the
 * scheduler has not taken into account after `olderThanMs`: the event was lost on the way
 * (Redis down at publish time). They are published again under the same event ids.
 */
export async function sweepUnsettledResults(deps: TimerDeps, olderThanMs: number): Promise<TimerResult> {
  const cutoff = new Date(deps.clock.now() - olderThanMs);
  const answered = await deps.prisma.operation.findMany({
    where: { settledAt: null, planned: { not: Prisma.DbNull }, status: { in: ['succeeded', 'failed', 'refused'] }, finishedAt: { lt: cutoff } },
    select: { idempotencyKey: true, status: true, error: true, result: true },
    take: 1000,
  });
  for (const op of answered) {
    const outcome = op.status as 'succeeded' | 'failed' | 'refused';
    // A reconcile's findings must survive the detour: without them its LOST desktops would be
    // declared STOPPED while they still run on the PC.
    const found = outcome === 'succeeded' ? foundRunningSchema.safeParse(op.result) : undefined;
    await deps.events.publishOperationResult({
      idempotencyKey: op.idempotencyKey,
      outcome,
      ...(op.error ? { error: op.error.slice(0, 2000) } : {}),
      ...(found?.success ? { foundRunningVmIds: found.data.foundRunningVmIds } : {}),
      ...(found?.success && found.data.foundRunningTaskIds ? { foundRunningTaskIds: found.data.foundRunningTaskIds } : {}),
    });
  }
  return { count: answered.length };
}

export async function runTimer(timer: RuntimeTimer, deps: TimerDeps): Promise<TimerResult> {
  switch (timer) {
    case 'heartbeatCheck':
      return checkHeartbeats(deps);
    case 'resultSweep':
      return sweepUnsettledResults(deps, deps.settings.redispatchAfterMs);
    case 'redispatch':
      return { count: await redispatchStale(deps.prisma, deps.redis, deps.channelPrefix, deps.clock, deps.settings.redispatchAfterMs) };
    default: {
      const slot = Math.floor(deps.clock.now() / deps.settings.intervalsMs[timer]);
      const pools = await deps.prisma.pool.findMany({ select: { id: true } });
      for (const p of pools) await deps.events.publishTick({ timer, poolId: p.id, slot });
      return { count: pools.length };
    }
  }
}
