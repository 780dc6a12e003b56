// The audit trail a placement commit writes, on real PostgreSQL: operation "planned" events
// built by the database from the operation rows, and transition events sent as compact rows.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertAuditEvents } from '../src/runtime/bulk.js';
import { SchedulerEngine } from '../src/runtime/engine.js';
import { createOffice, ManualClock, NIGHT, startServices, type TestServices } from './runtime-fixtures.js';

let s: TestServices;
const clock = new ManualClock(NIGHT);

beforeAll(async () => {
  s = await startServices();
});
afterAll(async () => {
  await s?.close();
});

describe('audit of a placement commit', () => {
  it('records each task transition and each planned operation, with cause, before and after', async () => {
    const office = await createOffice(s.prisma, { now: NIGHT });
    const job = await s.prisma.batchJob.create({
      data: { name: 'audit', submittedBy: 'user:x', poolId: office.poolId, spec: { name: 'audit', command: ['true'], cores: 1, memoryMiB: 512 }, taskCount: 3, tasks: { create: [0, 1, 2].map((index) => ({ index })) } },
    });
    const engine = new SchedulerEngine({ prisma: s.prisma, redis: s.redis, clock, channelPrefix: s.channelPrefix });
    const eventId = `job.${job.id}`;
    expect(await engine.handle({ type: 'jobSubmitted', id: eventId, jobId: job.id })).toMatchObject({ status: 'committed', operations: 3 });

    const tasks = await s.prisma.batchTask.findMany({ where: { jobId: job.id } });
    const ops = await s.prisma.operation.findMany({ where: { taskId: { in: tasks.map((t) => t.id) } } });
    expect(ops).toHaveLength(3);
    const cause = `event:jobSubmitted#${eventId} rule:batch.placement`;
    const events = await s.prisma.auditEvent.findMany({
      where: { OR: [{ entityId: { in: tasks.map((t) => t.id) } }, { entityId: { in: ops.map((o) => o.id) } }] },
      orderBy: { id: 'asc' },
    });
    expect(events).toHaveLength(6);
    for (const t of tasks) {
      const [e, ...more] = events.filter((a) => a.entityId === t.id);
      expect(more).toHaveLength(0);
      expect(e).toMatchObject({
        entityType: 'task',
        action: 'task.state.QUEUED->RUNNING',
        actor: 'scheduler',
        cause,
        before: { state: 'QUEUED', hostId: null, generation: 0 },
        after: { state: 'RUNNING', hostId: t.hostId, generation: 1 },
      });
    }
    for (const o of ops) {
      const [e, ...more] = events.filter((a) => a.entityId === o.id);
      expect(more).toHaveLength(0);
      expect(e).toMatchObject({ entityType: 'operation', action: 'operation.planned.placeTask', actor: 'scheduler', cause, before: null });
      expect(e?.after).toEqual({ idempotencyKey: o.idempotencyKey, hostId: o.hostId, generation: 1, kind: 'run-batch' });
      // A plan's operations are audited after the transitions they came with.
      const taskEvent = events.find((a) => a.entityId === o.taskId);
      expect(e!.id > taskEvent!.id).toBe(true);
    }
  });

  it('keeps the given order, shared causes and empty before/after as NULL', async () => {
    const entityId = `audit-order-${Date.now()}`;
    const at = new Date(NIGHT);
    await insertAuditEvents(s.prisma, [
      { entityType: 'probe', entityId, action: 'a', actor: 'scheduler', cause: 'c1' },
      { entityType: 'probe', entityId, action: 'b', actor: 'scheduler', cause: 'c2', before: { n: 1 }, after: { at, big: 12n } },
      { entityType: 'probe', entityId, action: 'c', actor: 'api', cause: 'c1', after: { list: [1, 'x'] } },
    ]);
    const rows = await s.prisma.auditEvent.findMany({ where: { entityType: 'probe', entityId }, orderBy: { id: 'asc' } });
    expect(rows.map((r) => [r.action, r.actor, r.cause, r.before, r.after])).toEqual([
      ['a', 'scheduler', 'c1', null, null],
      ['b', 'scheduler', 'c2', { n: 1 }, { at: at.toISOString(), big: '12' }],
      ['c', 'api', 'c1', null, { list: [1, 'x'] }],
    ]);
  });
});
