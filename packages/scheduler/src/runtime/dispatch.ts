// After a commit: commands go to the agents through the same Redis channels the API's agent
// gateway subscribes to. Nothing here is the source of truth: operations stay in PostgreSQL
// until answered, so a command published while its agent is offline is sent again later.
import type { PrismaClient } from '@deskpool/db';
import { commandFrameSchema, encodeFrame, type CommandFrame } from '@deskpool/protocol';
import type { Redis } from 'ioredis';
import type { PlannedDispatch } from './commit.js';
import type { Clock, Logger } from './engine.js';
import { batchDomainNameOf } from './mapping.js';
import { wireKey } from './commands.js';

/** Same default as the gateway's AgentRegistry (apps/api/src/agent/registry.ts). */
export const DEFAULT_AGENT_CHANNEL_PREFIX = 'deskpool:agent:';

export const hostCommandChannel = (prefix: string, hostId: string): string => `${prefix}${hostId}`;

/**
 * Publishes each command and marks its operation `sent`. Returns how many went out. A command
 * that fails validation is a runtime bug: it is logged and left pending, never sent half-formed.
 */
export async function dispatchCommands(prisma: PrismaClient, redis: Redis, channelPrefix: string, dispatches: PlannedDispatch[], clock: Clock, log: Logger): Promise<number> {
  const ready: { d: PlannedDispatch; frame: CommandFrame }[] = [];
  for (const d of dispatches) {
    if (!d.frame) {
      log.warn({ operationId: d.operationId, type: d.type }, 'a name the agent needs is unknown (domain, peer host or MAC); the operation stays pending');
      continue;
    }
    const parsed = commandFrameSchema.safeParse(d.frame);
    if (!parsed.success) {
      log.error({ operationId: d.operationId, issues: parsed.error.issues }, 'planned command does not match the agent protocol; left pending');
      continue;
    }
    ready.push({ d, frame: parsed.data });
  }
  if (ready.length === 0) return 0;
  // One round trip for all of a plan's commands, in plan order (a placement round has thousands).
  const pipeline = redis.pipeline();
  for (const { d, frame } of ready) pipeline.publish(hostCommandChannel(channelPrefix, d.hostId), encodeFrame(frame));
  const results = (await pipeline.exec()) ?? [];
  const failed = results.find(([err]) => err);
  if (failed) throw failed[0] as Error;
  await markSent(prisma, ready.map((r) => r.d.operationId), new Date(clock.now()));
  return ready.length;
}

/** Marks published operations `sent` (those still pending), in one statement whatever their number. */
async function markSent(prisma: PrismaClient, operationIds: string[], at: Date): Promise<void> {
  await prisma.$executeRawUnsafe(
    `UPDATE "operations" SET "status" = 'sent', "sent_at" = $2::timestamptz
     WHERE "id" IN (SELECT (jsonb_array_elements_text($1::jsonb))::uuid) AND "status" = 'pending'`,
    JSON.stringify(operationIds),
    at.toISOString(),
  );
}

type OperationWithVm = {
  id: string;
  idempotencyKey: string;
  hostId: string;
  kind: string;
  generation: number;
  params: unknown;
  vmId: string | null;
  taskId: string | null;
  planned: unknown;
  vm: { name: string } | null;
};

/** The protocol frame for a stored operation, or null when it no longer forms a valid command. */
export function frameOfOperation(op: OperationWithVm): CommandFrame | null {
  let target: { vmId: string; domainName: string; generation: number } | undefined;
  if (op.vmId && op.vm) target = { vmId: op.vmId, domainName: op.vm.name, generation: op.generation };
  else if (op.taskId) target = { vmId: op.taskId, domainName: batchDomainNameOf(op.taskId), generation: op.generation };
  // The ordering is re-sent too: a re-published restore must still wait for its checkpoint.
  const plannedAfter = (op.planned as { after?: unknown } | null)?.after;
  const after = Array.isArray(plannedAfter) ? plannedAfter.filter((k): k is string => typeof k === 'string').map(wireKey) : [];
  const parsed = commandFrameSchema.safeParse({
    type: 'command',
    idempotencyKey: op.idempotencyKey,
    operationId: op.id,
    kind: op.kind,
    ...(target ? { target } : {}),
    ...(after.length > 0 ? { after } : {}),
    params: op.params,
  });
  return parsed.success ? parsed.data : null;
}

/**
 * Commands a host still has to carry out, oldest first: operations the scheduler planned that
 * are neither answered nor settled. Call it when an agent (re)connects and send each frame:
 * idempotency keys make repeats harmless, so nothing published while it was away is lost.
 */
export async function pendingCommandsForHost(prisma: PrismaClient, hostId: string, limit = 500): Promise<CommandFrame[]> {
  const ops = await prisma.operation.findMany({
    where: { hostId, status: { in: ['pending', 'sent', 'running'] }, settledAt: null },
    include: { vm: { select: { name: true } } },
    orderBy: { createdAt: 'asc' },
    take: limit,
  });
  const frames: CommandFrame[] = [];
  for (const op of ops) {
    // An operation whose frame cannot be built (e.g. a desktop row deleted since) is skipped.
    const frame = frameOfOperation(op);
    if (frame) frames.push(frame);
  }
  return frames;
}

/**
 * `pendingCommandsForHost` for many hosts in one query (agents connecting in a burst, e.g. after
 * an API restart): at most `limitPerHost` frames per host, oldest first. Hosts with nothing to
 * do are absent from the map.
 */
export async function pendingCommandsForHosts(prisma: Pick<PrismaClient, '$queryRawUnsafe'>, hostIds: string[], limitPerHost = 500): Promise<Map<string, CommandFrame[]>> {
  const out = new Map<string, CommandFrame[]>();
  if (hostIds.length === 0) return out;
  const rows = await prisma.$queryRawUnsafe<OperationRow[]>(
    `SELECT * FROM (
       SELECT o."id"::text AS id, o."idempotency_key", o."host_id"::text AS host_id, o."kind", o."generation", o."params", o."vm_id"::text AS vm_id,
              o."task_id"::text AS task_id, o."planned", v."name" AS vm_name,
              row_number() OVER (PARTITION BY o."host_id" ORDER BY o."created_at", o."id") AS n
       FROM "operations" AS o LEFT JOIN "desktop_vms" AS v ON v."id" = o."vm_id"
       WHERE o."host_id" IN (SELECT (jsonb_array_elements_text($1::jsonb))::uuid)
         AND o."status" IN ('pending', 'sent', 'running') AND o."settled_at" IS NULL
     ) AS p WHERE p.n <= $2 ORDER BY p.host_id, p.n`,
    JSON.stringify(hostIds),
    limitPerHost,
  );
  for (const r of rows) {
    const frame = frameOfOperation(operationOfRow(r));
    if (!frame) continue;
    const list = out.get(r.host_id);
    if (list) list.push(frame);
    else out.set(r.host_id, [frame]);
  }
  return out;
}

type OperationRow = { id: string; idempotency_key: string; host_id: string; kind: string; generation: number; params: unknown; vm_id: string | null; task_id: string | null; planned: unknown; vm_name: string | null };

function operationOfRow(r: OperationRow): OperationWithVm {
  return {
    id: r.id,
    idempotencyKey: r.idempotency_key,
    hostId: r.host_id,
    kind: r.kind,
    generation: r.generation,
    params: r.params,
    vmId: r.vm_id,
    taskId: r.task_id,
    planned: r.planned,
    vm: r.vm_name === null ? null : { name: r.vm_name },
  };
}

/**
 * undispatchedOfEvent's query with the event id as parameter `eventIdParam`, each row numbered
 * (`n`) in send order: the expression matches the partial index operations_pending_event_idx, so
 * it stays cheap however many operations the table holds. Other statements embed it.
 */
export function undispatchedSql(eventIdParam: string): string {
  return `SELECT o."id"::text AS id, o."idempotency_key", o."host_id"::text AS host_id, o."kind", o."generation", o."params", o."vm_id"::text AS vm_id,
            o."task_id"::text AS task_id, o."planned", v."name" AS vm_name, row_number() OVER (ORDER BY o."created_at", o."id") AS n
     FROM "operations" AS o LEFT JOIN "desktop_vms" AS v ON v."id" = o."vm_id"
     WHERE o."status" = 'pending' AND o."settled_at" IS NULL AND (o."planned" -> 'cause' ->> 'eventId') = ${eventIdParam}`;
}

/**
 * Operations an earlier run of the same event committed but never published (its worker died
 * between commit and dispatch). The re-run publishes them, so a crash there delays, not loses.
 */
export async function undispatchedOfEvent(prisma: Pick<PrismaClient, '$queryRawUnsafe'>, eventId: string): Promise<PlannedDispatch[]> {
  // Raw SQL: this runs after every event, and the expression matches the partial index
  // operations_pending_event_idx, so it stays cheap however many operations the table holds.
  const rows = await prisma.$queryRawUnsafe<OperationRow[]>(`${undispatchedSql('$1')} ORDER BY n`, eventId);
  return dispatchesOfRows(rows);
}

export type UndispatchedRow = OperationRow;

/** The dispatches of undispatchedOfEvent's rows, however they were read. */
export function dispatchesOfRows(rows: UndispatchedRow[]): PlannedDispatch[] {
  return rows.map((r) => {
    const op = operationOfRow(r);
    return { operationId: op.id, idempotencyKey: op.idempotencyKey, hostId: op.hostId, type: (op.planned as { type: PlannedDispatch['type'] }).type, frame: frameOfOperation(op) };
  });
}

/**
 * Re-publishes operations still `pending` after `olderThanMs` (the worker died between commit
 * and publish, or Redis was down then). Runs on a timer; returns how many were published.
 */
export async function redispatchStale(prisma: PrismaClient, redis: Redis, channelPrefix: string, clock: Clock, olderThanMs: number): Promise<number> {
  const cutoff = new Date(clock.now() - olderThanMs);
  const hosts = await prisma.operation.findMany({
    where: { status: 'pending', settledAt: null, createdAt: { lt: cutoff } },
    select: { hostId: true },
    distinct: ['hostId'],
    take: 1000,
  });
  let published = 0;
  for (const { hostId } of hosts) {
    const keys: string[] = [];
    for (const frame of await pendingCommandsForHost(prisma, hostId)) {
      await redis.publish(hostCommandChannel(channelPrefix, hostId), encodeFrame(frame));
      keys.push(frame.idempotencyKey);
      published += 1;
    }
    await prisma.operation.updateMany({ where: { idempotencyKey: { in: keys }, status: 'pending' }, data: { status: 'sent', sentAt: new Date(clock.now()) } });
  }
  return published;
}
