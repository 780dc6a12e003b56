import { recordAudit, type PrismaClient } from '@deskpool/db';
import { errorFrame, reconcileResultSchema, type ErrorFrame, type SequencedUpFrame } from '@deskpool/protocol';
import type { Redis } from 'ioredis';
import type { Clock } from '../clock.js';
import { hostFieldsFromInventory } from './enroll.js';
import type { HeartbeatWriter } from './heartbeats.js';
import type { TaskOutputSink } from './task-output.js';

/** Where agent events go for the scheduler (SchedulerEvents from @deskpool/scheduler fits). */
export interface AgentEventSink {
  publishPresence(p: { hostId: string; presence: 'present' | 'idle'; at: Date | number }): Promise<void>;
  publishSignIn(p: { hostId: string; userId: string; at: Date | number }): Promise<void>;
  publishOperationResult(p: {
    idempotencyKey: string;
    outcome: 'succeeded' | 'failed' | 'refused';
    generation?: number;
    error?: string;
    /** A reconcile's answer: the desktops the host found running, which the scheduler adopts. */
    foundRunningVmIds?: string[];
    foundRunningTaskIds?: string[];
  }): Promise<void>;
  /** A batch guest powered off on its own (SchedulerEvents.publishTaskFinished). */
  publishTaskFinished?(p: { taskId: string; generation: number; outcome: 'succeeded' | 'failed' }): Promise<void>;
}

export interface FrameContext {
  prisma: PrismaClient;
  redis: Redis;
  clock: Clock;
  hostId: string;
  hostName: string;
  /** The credential the agent connected with; checked again at every heartbeat. */
  credentialId: string;
  heartbeats: HeartbeatWriter;
  /** Redis key prefix for what the gateway keeps there (domain states, the event stream). */
  keyPrefix: string;
  events?: AgentEventSink;
  /** Console output and results of batch tasks (job logs); discarded when not given. */
  taskOutput?: TaskOutputSink;
}

const OP_FINAL = ['succeeded', 'failed', 'refused'] as const;

// Tasks are optional here: an answer recorded before agents reported them still counts.
const foundRunningSchema = reconcileResultSchema.pick({ foundRunningVmIds: true }).extend({ foundRunningTaskIds: reconcileResultSchema.shape.foundRunningTaskIds.optional() });

/**
 * Applies one validated up-frame to the database. Every frame is safe to apply twice (a frame
 * whose ack was lost is re-sent after a reconnect). Returns an error frame when the agent asked
 * for something it may not do; throws only on infrastructure failure.
 */
export async function applyUpFrame(ctx: FrameContext, frame: SequencedUpFrame): Promise<ErrorFrame | null> {
  const { prisma, hostId } = ctx;
  const actor = `agent:${ctx.hostName}`;
  const cause = `agent-frame:${frame.type}#${frame.seq}`;
  const at = new Date(frame.at);
  switch (frame.type) {
    case 'heartbeat':
      if (!(await ctx.heartbeats.record(hostId, ctx.credentialId))) {
        return errorFrame('CREDENTIAL_REVOKED', "this host's credential was revoked (or the host removed); enroll again with a new token if the PC should rejoin", { fatal: true, refSeq: frame.seq });
      }
      return null;
    case 'presence': {
      const since = frame.idleSince !== null ? new Date(frame.idleSince) : at;
      await recordPresence(prisma, { hostId, state: frame.state, since, heartbeatAt: ctx.clock.now(), actor, cause: `${cause} (source ${frame.source})` });
      await publishEvent(ctx, frame);
      // Event ids derive from the frame, so a re-sent frame is queued once.
      await ctx.events?.publishPresence({ hostId, presence: frame.state, at });
      return null;
    }
    case 'signin': {
      const user = await prisma.user.findUnique({ where: { name: frame.user }, select: { id: true } });
      await recordAudit(prisma, { entityType: 'host', entityId: hostId, action: 'signin', actor, cause, after: { user: frame.user, userId: user?.id ?? null, at: frame.at } });
      await publishEvent(ctx, frame);
      if (user) await ctx.events?.publishSignIn({ hostId, userId: user.id, at });
      return null;
    }
    case 'inventory':
      await prisma.$transaction(async (tx) => {
        const before = await tx.host.findUnique({ where: { id: hostId }, select: { inventory: true } });
        if (!before) return;
        if (JSON.stringify(before.inventory) === JSON.stringify(frame.inventory)) return;
        await tx.host.update({ where: { id: hostId }, data: { ...hostFieldsFromInventory(frame.inventory), version: { increment: 1 } } });
        await recordAudit(tx, { entityType: 'host', entityId: hostId, action: 'inventory', actor, cause, before: before.inventory, after: frame.inventory });
      });
      return null;
    case 'domain-state':
      await ctx.redis.set(`${ctx.keyPrefix}domains:${hostId}`, JSON.stringify({ at: frame.at, domains: frame.domains }));
      await publishEvent(ctx, frame);
      return null;
    case 'op-progress': {
      const op = await prisma.operation.findUnique({ where: { idempotencyKey: frame.idempotencyKey }, select: { hostId: true } });
      if (!op) return null;
      if (op.hostId !== hostId) return notYours(frame.idempotencyKey, frame.seq);
      await prisma.operation.updateMany({
        where: { idempotencyKey: frame.idempotencyKey, status: { in: ['pending', 'sent', 'running'] } },
        data: { status: 'running', progress: frame.percent / 100, startedAt: at },
      });
      return null;
    }
    case 'op-result': {
      const refused = await prisma.$transaction(async (tx) => {
        const op = await tx.operation.findUnique({ where: { idempotencyKey: frame.idempotencyKey } });
        if (!op) {
          await recordAudit(tx, { entityType: 'host', entityId: hostId, action: 'op-result.unknown-operation', actor, cause, after: frame });
          return null;
        }
        if (op.hostId !== hostId) return notYours(frame.idempotencyKey, frame.seq);
        if ((OP_FINAL as readonly string[]).includes(op.status)) return null; // already recorded
        const after = await tx.operation.update({
          where: { id: op.id },
          data: {
            status: frame.outcome,
            result: (frame.result ?? { replayed: frame.replayed }) as object,
            error: frame.error ? `${frame.error.code}: ${frame.error.message}` : null,
            progress: frame.outcome === 'succeeded' ? 1 : op.progress,
            finishedAt: at,
          },
        });
        await recordAudit(tx, {
          entityType: 'operation',
          entityId: op.id,
          action: `operation.${frame.outcome}`,
          actor,
          cause,
          before: { status: op.status },
          after: { status: after.status, result: frame.result, error: frame.error, replayed: frame.replayed },
        });
        return null;
      });
      if (refused) return refused;
      await publishEvent(ctx, frame);
      // Only a succeeded answer's findings count; anything else in `result` is for the audit trail.
      const found = frame.outcome === 'succeeded' ? foundRunningSchema.safeParse(frame.result) : undefined;
      await ctx.events?.publishOperationResult({
        idempotencyKey: frame.idempotencyKey,
        outcome: frame.outcome,
        ...(frame.error ? { error: `${frame.error.code}: ${frame.error.message}`.slice(0, 2000) } : {}),
        ...(found?.success ? { foundRunningVmIds: found.data.foundRunningVmIds } : {}),
        ...(found?.success && found.data.foundRunningTaskIds ? { foundRunningTaskIds: found.data.foundRunningTaskIds } : {}),
      });
      return null;
    }
    case 'events-dropped':
      await recordAudit(prisma, { entityType: 'host', entityId: hostId, action: 'agent.events-dropped', actor, cause, after: frame });
      return null;
    case 'task-output': {
      if (!(await ranTaskHere(ctx, frame.taskId, frame.generation))) return notYourTask(frame.taskId, frame.generation, frame.seq);
      await ctx.taskOutput?.append(hostId, frame);
      return null;
    }
    case 'task-finished': {
      if (!(await ranTaskHere(ctx, frame.taskId, frame.generation))) return notYourTask(frame.taskId, frame.generation, frame.seq);
      await ctx.taskOutput?.finished(hostId, frame);
      await recordAudit(prisma, {
        entityType: 'task',
        entityId: frame.taskId,
        action: 'task.guest-finished',
        actor,
        cause,
        after: { generation: frame.generation, exitCode: frame.exitCode, reason: frame.reason ?? null },
      });
      await publishEvent(ctx, frame);
      // The scheduler ignores a report for an older generation (the task moved on since).
      await ctx.events?.publishTaskFinished?.({ taskId: frame.taskId, generation: frame.generation, outcome: frame.exitCode === 0 ? 'succeeded' : 'failed' });
      return null;
    }
  }
}

/**
 * The PC's presence and its audit event, in one statement (one round trip, no interactive
 * transaction holding a pooled connection while thousands of agents heartbeat). A late
 * duplicate of an older frame (same state already recorded) changes nothing and is not audited.
 */
async function recordPresence(
  prisma: PrismaClient,
  p: { hostId: string; state: 'present' | 'idle'; since: Date; heartbeatAt: Date | number; actor: string; cause: string },
): Promise<void> {
  const heartbeatAt = new Date(p.heartbeatAt);
  const after = JSON.stringify({ presenceState: p.state, presenceSince: p.since.toISOString() });
  await prisma.$executeRaw`
    WITH before AS (
      SELECT presence_state, presence_since FROM hosts WHERE id = ${p.hostId}::uuid FOR UPDATE
    ), changed AS (
      UPDATE hosts AS h SET presence_state = ${p.state}::presence_state, presence_since = ${p.since}, last_heartbeat_at = ${heartbeatAt}, online_state = 'online'
      FROM before AS b
      WHERE h.id = ${p.hostId}::uuid AND NOT (b.presence_since IS NOT NULL AND b.presence_state = ${p.state}::presence_state)
      RETURNING h.id
    )
    INSERT INTO audit_events (entity_type, entity_id, action, actor, cause, before, after)
    SELECT 'host', ${p.hostId}, ${`presence.${p.state}`}, ${p.actor}, ${p.cause},
           jsonb_build_object('presenceState', b.presence_state,
                              'presenceSince', to_char(b.presence_since AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
           ${after}::jsonb
    FROM before AS b, changed`;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The control plane sent this host a command for the task at that generation. */
async function ranTaskHere(ctx: FrameContext, taskId: string, generation: number): Promise<boolean> {
  if (!UUID.test(taskId)) return false;
  const op = await ctx.prisma.operation.findFirst({ where: { taskId, hostId: ctx.hostId, generation }, select: { id: true } });
  return op !== null;
}

function notYourTask(taskId: string, generation: number, seq: number): ErrorFrame {
  return errorFrame('NOT_YOUR_HOST', `task ${taskId} at generation ${generation} was never given to this host; an agent can only report tasks it was told to run`, { refSeq: seq, details: { taskId, generation } });
}

function notYours(idempotencyKey: string, seq: number): ErrorFrame {
  return errorFrame('NOT_YOUR_HOST', `operation ${idempotencyKey} belongs to another host; an agent can only report for its own host`, { refSeq: seq, refIdempotencyKey: idempotencyKey });
}

/**
 * Agent events the scheduler reacts to (presence, sign-in, domain states, op results) go on a
 * Redis stream, capped, so a scheduler worker that restarts picks up where it left off.
 */
async function publishEvent(ctx: FrameContext, frame: SequencedUpFrame): Promise<void> {
  await ctx.redis.xadd(`${ctx.keyPrefix}events`, 'MAXLEN', '~', '100000', '*', 'hostId', ctx.hostId, 'frame', JSON.stringify(frame));
}
