// task-output and task-finished frames: taken only from the host that was told to run the task
// at that generation, handed to the TaskOutputSink, and task-finished forwarded to the scheduler.
// Real PostgreSQL, real Redis (BullMQ).
import { randomUUID } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '@deskpool/db/testing';
import type { TaskFinishedFrame, TaskOutputFrame } from '@deskpool/protocol';
import { SchedulerEvents } from '@deskpool/scheduler';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyUpFrame, type FrameContext } from '../src/agent/frames.js';
import { HeartbeatWriter } from '../src/agent/heartbeats.js';
import type { TaskOutputSink } from '../src/agent/task-output.js';
import { systemClock } from '../src/clock.js';
import { REDIS_URL } from './helpers.js';

let db: TestDatabase;
let redis: Redis;
let events: SchedulerEvents;
let ctx: FrameContext;
let otherCtx: FrameContext;
let taskId: string;
const keyPrefix = `dpt:${randomUUID()}:`;
const stored: { hostId: string; frame: TaskOutputFrame | TaskFinishedFrame }[] = [];
const sink: TaskOutputSink = {
  append: (hostId, frame) => Promise.resolve(void stored.push({ hostId, frame })),
  finished: (hostId, frame) => Promise.resolve(void stored.push({ hostId, frame })),
};

beforeAll(async () => {
  db = await createTestDatabase();
  redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  events = new SchedulerEvents({ connection: redis, prefix: `dpt-${randomUUID()}` });
  const pool = await db.prisma.pool.create({ data: { name: `pool-${randomUUID().slice(0, 8)}`, timeZone: 'UTC' } });
  const host = await db.prisma.host.create({ data: { name: `pc-${randomUUID().slice(0, 8)}`, poolId: pool.id } });
  const other = await db.prisma.host.create({ data: { name: `pc-${randomUUID().slice(0, 8)}`, poolId: pool.id } });
  const job = await db.prisma.batchJob.create({ data: { name: 'count', submittedBy: 'user:test', poolId: pool.id, spec: {}, taskCount: 1 } });
  const task = await db.prisma.batchTask.create({ data: { jobId: job.id, index: 0, state: 'running', hostId: host.id, generation: 3 } });
  taskId = task.id;
  await db.prisma.operation.create({ data: { idempotencyKey: `run-${taskId}`, hostId: host.id, taskId, kind: 'run-batch', generation: 3 } });
  const base = { prisma: db.prisma, redis, clock: systemClock, credentialId: 'unused', heartbeats: new HeartbeatWriter(db.prisma, systemClock), keyPrefix, events, taskOutput: sink };
  ctx = { ...base, hostId: host.id, hostName: host.name };
  otherCtx = { ...base, hostId: other.id, hostName: other.name };
});

afterAll(async () => {
  await events.queue.obliterate({ force: true }).catch(() => undefined);
  await events.queue.close();
  await redis.del(`${keyPrefix}events`);
  redis.disconnect();
  await db.drop();
});

const at = new Date().toISOString();
const output = (seq: number, extra: Partial<TaskOutputFrame> = {}): TaskOutputFrame => ({ type: 'task-output', seq, at, taskId, generation: 3, offset: 0, data: 'count 1\n', ...extra });
const finished = (seq: number, extra: Partial<TaskFinishedFrame> = {}): TaskFinishedFrame => ({ type: 'task-finished', seq, at, taskId, generation: 3, exitCode: 0, result: '55', ...extra });

async function queuedFinished(): Promise<Record<string, unknown>[]> {
  const jobs = await events.queue.getJobs(['waiting', 'prioritized', 'delayed']);
  return jobs.map((j) => j.data as Record<string, unknown>).filter((d) => d.type === 'taskFinished');
}

describe('task frames at the gateway', () => {
  it('hands output from the host that runs the task to the sink', async () => {
    expect(await applyUpFrame(ctx, output(1))).toBeNull();
    expect(stored.at(-1)).toEqual({ hostId: ctx.hostId, frame: output(1) });
  });

  it('refuses output and results from another host, for another generation, or for an unknown task, storing nothing', async () => {
    const before = stored.length;
    const cases = [
      await applyUpFrame(otherCtx, output(2)),
      await applyUpFrame(otherCtx, finished(3)),
      await applyUpFrame(ctx, output(4, { generation: 2 })),
      await applyUpFrame(ctx, output(5, { taskId: randomUUID() })),
      await applyUpFrame(ctx, output(6, { taskId: 'not-a-uuid' })),
    ];
    for (const problem of cases) expect(problem).toMatchObject({ type: 'error', code: 'NOT_YOUR_HOST', fatal: false });
    expect(cases.map((p) => p?.refSeq)).toEqual([2, 3, 4, 5, 6]);
    expect(stored.length).toBe(before);
    expect(await queuedFinished()).toEqual([]);
  });

  it('stores a task-finished, audits it and forwards it to the scheduler once, even when sent twice', async () => {
    expect(await applyUpFrame(ctx, finished(7))).toBeNull();
    expect(await applyUpFrame(ctx, finished(7))).toBeNull();
    expect(stored.filter((s) => s.frame.type === 'task-finished').map((s) => s.frame)).toEqual([finished(7), finished(7)]);
    expect(await queuedFinished()).toEqual([{ type: 'taskFinished', id: `taskdone.${taskId}.g3`, taskId, generation: 3, outcome: 'succeeded' }]);
    const audit = await db.prisma.auditEvent.findMany({ where: { entityType: 'task', entityId: taskId, action: 'task.guest-finished' } });
    expect(audit.length).toBe(2);
  });

  it('a non-zero or unknown exit code is a failure for the scheduler', async () => {
    await db.prisma.operation.create({ data: { idempotencyKey: `run-${taskId}-g4`, hostId: ctx.hostId, taskId, kind: 'run-batch', generation: 4 } });
    expect(await applyUpFrame(ctx, finished(8, { generation: 4, exitCode: null, reason: 'crashed', result: undefined }))).toBeNull();
    expect(await queuedFinished()).toContainEqual({ type: 'taskFinished', id: `taskdone.${taskId}.g4`, taskId, generation: 4, outcome: 'failed' });
  });
});
