// A job's state follows its tasks (prisma/migrations/*_job_state_from_tasks): whichever writer
// moves the tasks, the job is queued, running, then ended with the right outcome and times.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../src/testing.js';

let db: TestDatabase;
let poolId = '';
beforeAll(async () => {
  db = await createTestDatabase();
  poolId = (await db.prisma.pool.create({ data: { name: 'p', timeZone: 'UTC' } })).id;
});
afterAll(async () => {
  await db.drop();
});

async function job(taskCount: number): Promise<{ id: string; taskIds: string[] }> {
  const j = await db.prisma.batchJob.create({
    data: { name: 'j', submittedBy: 'user:alice', poolId, spec: {}, taskCount, tasks: { create: Array.from({ length: taskCount }, (_, index) => ({ index })) } },
    include: { tasks: { orderBy: { index: 'asc' } } },
  });
  return { id: j.id, taskIds: j.tasks.map((t) => t.id) };
}

const at = (min: number): Date => new Date(Date.UTC(2026, 10, 26, 22, min));

async function jobRow(id: string): Promise<{ state: string; startedAt: Date | null; finishedAt: Date | null }> {
  return db.prisma.batchJob.findUniqueOrThrow({ where: { id }, select: { state: true, startedAt: true, finishedAt: true } });
}

describe('job state from its tasks', () => {
  it('is queued, then running from the first placement, then succeeded when the last task succeeds, with the tasks times', async () => {
    const { id, taskIds } = await job(3);
    expect(await jobRow(id)).toEqual({ state: 'queued', startedAt: null, finishedAt: null });
    await db.prisma.batchTask.update({ where: { id: taskIds[0] }, data: { state: 'running', startedAt: at(1) } });
    expect(await jobRow(id)).toEqual({ state: 'running', startedAt: at(1), finishedAt: null });
    await db.prisma.batchTask.updateMany({ where: { id: { in: taskIds.slice(0, 2) } }, data: { state: 'succeeded', finishedAt: at(30) } });
    expect((await jobRow(id)).state).toBe('running');
    // checkpointed and back in the queue: still running
    await db.prisma.batchTask.update({ where: { id: taskIds[2] }, data: { state: 'checkpointed' } });
    await db.prisma.batchTask.update({ where: { id: taskIds[2] }, data: { state: 'queued' } });
    expect((await jobRow(id)).state).toBe('running');
    await db.prisma.batchTask.update({ where: { id: taskIds[2] }, data: { state: 'succeeded', finishedAt: at(45) } });
    expect(await jobRow(id)).toEqual({ state: 'succeeded', startedAt: at(1), finishedAt: at(45) });
  });

  it('fails when any task failed, and a missed deadline outranks a cancellation', async () => {
    const a = await job(2);
    await db.prisma.batchTask.update({ where: { id: a.taskIds[0] }, data: { state: 'failed', finishedAt: at(5) } });
    expect((await jobRow(a.id)).state).toBe('queued');
    await db.prisma.batchTask.update({ where: { id: a.taskIds[1] }, data: { state: 'succeeded', finishedAt: at(6) } });
    expect(await jobRow(a.id)).toMatchObject({ state: 'failed', finishedAt: at(6) });

    const b = await job(2);
    await db.prisma.batchTask.update({ where: { id: b.taskIds[0] }, data: { state: 'cancelled' } });
    await db.prisma.batchTask.update({ where: { id: b.taskIds[1] }, data: { state: 'deadline_missed' } });
    expect((await jobRow(b.id)).state).toBe('deadline_missed');
  });

  it('keeps a cancelled job cancelled and gives it its finish time when its last running task stops', async () => {
    const { id, taskIds } = await job(2);
    await db.prisma.batchTask.update({ where: { id: taskIds[0] }, data: { state: 'running', startedAt: at(2) } });
    // the API's cancel: queued tasks end at once, the job is marked cancelled while one still runs
    await db.prisma.$transaction([
      db.prisma.batchTask.updateMany({ where: { jobId: id, state: 'queued' }, data: { state: 'cancelled', finishedAt: at(10) } }),
      db.prisma.batchJob.update({ where: { id }, data: { state: 'cancelled', cancelRequestedAt: at(10) } }),
    ]);
    expect(await jobRow(id)).toMatchObject({ state: 'cancelled', finishedAt: null });
    await db.prisma.batchTask.update({ where: { id: taskIds[0] }, data: { state: 'cancelled', finishedAt: at(12) } });
    expect(await jobRow(id)).toEqual({ state: 'cancelled', startedAt: at(2), finishedAt: at(12) });
  });

  it('leaves a job with no task placed queued when all its tasks are cancelled from the queue, then cancelled', async () => {
    const { id } = await job(2);
    await db.prisma.batchTask.updateMany({ where: { jobId: id }, data: { state: 'cancelled', finishedAt: at(3) } });
    expect(await jobRow(id)).toEqual({ state: 'cancelled', startedAt: null, finishedAt: at(3) });
  });
});
