// The gateway hands an agent's op-result to the scheduler with everything the planner needs:
// for a reconcile, the desktops the PC found running. Real PostgreSQL, real Redis (BullMQ).
import { randomUUID } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '@deskpool/db/testing';
import type { OpResultFrame } from '@deskpool/protocol';
import { SchedulerEvents } from '@deskpool/scheduler';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyUpFrame, type FrameContext } from '../src/agent/frames.js';
import { HeartbeatWriter } from '../src/agent/heartbeats.js';
import { systemClock } from '../src/clock.js';
import { REDIS_URL } from './helpers.js';

let db: TestDatabase;
let redis: Redis;
let events: SchedulerEvents;
let ctx: FrameContext;
let hostId: string;
const keyPrefix = `dpt:${randomUUID()}:`;

beforeAll(async () => {
  db = await createTestDatabase();
  redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  events = new SchedulerEvents({ connection: redis, prefix: `dpt-${randomUUID()}` });
  const pool = await db.prisma.pool.create({ data: { name: `pool-${randomUUID().slice(0, 8)}`, timeZone: 'UTC' } });
  const host = await db.prisma.host.create({ data: { name: `pc-${randomUUID().slice(0, 8)}`, poolId: pool.id } });
  hostId = host.id;
  ctx = { prisma: db.prisma, redis, clock: systemClock, hostId, hostName: host.name, credentialId: 'unused', heartbeats: new HeartbeatWriter(db.prisma, systemClock), keyPrefix, events };
});

afterAll(async () => {
  await events.queue.obliterate({ force: true }).catch(() => undefined);
  await events.queue.close();
  await redis.del(`${keyPrefix}events`);
  redis.disconnect();
  await db.drop();
});

const opResult = (seq: number, idempotencyKey: string, extra: Partial<OpResultFrame>): OpResultFrame => ({
  type: 'op-result',
  seq,
  at: new Date().toISOString(),
  idempotencyKey,
  outcome: 'succeeded',
  replayed: false,
  ...extra,
});

async function queued(idempotencyKey: string): Promise<Record<string, unknown>[]> {
  const jobs = await events.queue.getJobs(['waiting', 'prioritized', 'delayed']);
  return jobs.map((j) => j.data as Record<string, unknown>).filter((d) => d.idempotencyKey === idempotencyKey);
}

describe('op-result forwarding to the scheduler', () => {
  it("forwards a reconcile's foundRunningVmIds and foundRunningTaskIds with the outcome", async () => {
    await db.prisma.operation.create({ data: { idempotencyKey: 'op-reconcile-01', hostId, kind: 'reconcile', generation: 0 } });
    const result = { foundRunningVmIds: ['vm-alice'], foundRunningTaskIds: ['t2'], destroyed: ['dp-task-t1'], changed: true };
    expect(await applyUpFrame(ctx, opResult(1, 'op-reconcile-01', { result }))).toBeNull();
    expect(await queued('op-reconcile-01')).toEqual([{ type: 'operationResult', id: 'result.op-reconcile-01.succeeded', idempotencyKey: 'op-reconcile-01', outcome: 'succeeded', foundRunningVmIds: ['vm-alice'], foundRunningTaskIds: ['t2'] }]);
    expect(await db.prisma.operation.findUniqueOrThrow({ where: { idempotencyKey: 'op-reconcile-01' } })).toMatchObject({ status: 'succeeded', result });
  });

  it('forwards an empty found list (nothing survived) rather than dropping it', async () => {
    await db.prisma.operation.create({ data: { idempotencyKey: 'op-reconcile-02', hostId, kind: 'reconcile', generation: 0 } });
    await applyUpFrame(ctx, opResult(2, 'op-reconcile-02', { result: { foundRunningVmIds: [], foundRunningTaskIds: [], destroyed: [] } }));
    expect(await queued('op-reconcile-02')).toMatchObject([{ outcome: 'succeeded', foundRunningVmIds: [] }]);
  });

  it('forwards no findings for a failed reconcile, nor for other commands', async () => {
    await db.prisma.operation.create({ data: { idempotencyKey: 'op-reconcile-03', hostId, kind: 'reconcile', generation: 0 } });
    await applyUpFrame(ctx, opResult(3, 'op-reconcile-03', { outcome: 'failed', error: { code: 'AGENT_ERROR', message: 'virsh list failed' } }));
    const [failed] = await queued('op-reconcile-03');
    expect(failed).toMatchObject({ outcome: 'failed', error: 'AGENT_ERROR: virsh list failed' });
    expect(failed).not.toHaveProperty('foundRunningVmIds');

    await db.prisma.operation.create({ data: { idempotencyKey: 'op-suspend-04', hostId, kind: 'suspend', generation: 1 } });
    await applyUpFrame(ctx, opResult(4, 'op-suspend-04', { result: { state: 'saved' } }));
    const [suspend] = await queued('op-suspend-04');
    expect(suspend).toMatchObject({ outcome: 'succeeded' });
    expect(suspend).not.toHaveProperty('foundRunningVmIds');
  });
});
