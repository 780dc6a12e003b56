import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorOf, fieldsOf, MISSING_ID, startHarness, type Harness } from './helpers.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

const submit = async (token: string, spec: Record<string, unknown>) => {
  const res = await h.call(token, { method: 'POST', url: '/api/v1/jobs', payload: spec });
  expect(res.statusCode, res.body).toBe(201);
  return res.json() as { id: string; [k: string]: unknown };
};

describe('batch jobs', () => {
  it('accepts a job spec and creates its tasks queued', async () => {
    const job = await submit(h.tokens.submitter, { name: 'render', taskCount: 3, command: ['blender', '-b', 'scene.blend'], cores: 4, memoryMiB: 8192, priority: 200, env: { FRAMES: '1-100' } });
    expect(job).toMatchObject({ name: 'render', state: 'queued', taskCount: 3, priority: 200, submitterUserId: h.users.sam, submittedBy: 'user:sam', taskStates: { queued: 3 } });
    expect(job.spec).toMatchObject({ checkpointable: true, retries: 2, gpu: false, labels: [] });
    const tasks = await h.db.prisma.batchTask.findMany({ where: { jobId: job.id }, orderBy: { index: 'asc' } });
    expect(tasks.map((t) => [t.index, t.state])).toEqual([[0, 'queued'], [1, 'queued'], [2, 'queued']]);
    const event = await h.db.prisma.auditEvent.findFirstOrThrow({ where: { entityId: job.id } });
    expect(event).toMatchObject({ action: 'submit', actor: 'user:sam' });
  });

  it('names invalid spec fields and creates nothing', async () => {
    const before = await h.db.prisma.batchJob.count();
    const cases: [Record<string, unknown>, string][] = [
      [{ name: 'x', taskCount: 100_000, command: ['a'] }, 'body.taskCount'],
      [{ name: 'x' }, 'body.command'],
      [{ name: 'x', command: ['a'], memoryMiB: 1 }, 'body.memoryMiB'],
      [{ name: 'x', command: ['a'], env: { 'BAD-NAME': 'v' } }, 'body.env.BAD-NAME'],
      [{ name: 'x', command: ['a'], deadline: 'tomorrow' }, 'body.deadline'],
      [{ name: 'x', command: ['a'], deadline: '2001-01-01T00:00:00Z' }, 'body.deadline'],
      [{ name: 'x', command: ['a'], constraints: [{ attribute: 'gpu', operator: '==' }] }, 'body.constraints.0.value'],
      [{ name: 'x', command: ['a'], poolId: MISSING_ID }, 'body.poolId'],
      [{ name: 'x', command: ['a'], colour: 'red' }, 'body.colour'],
    ];
    for (const [spec, field] of cases) {
      const res = await h.call(h.tokens.submitter, { method: 'POST', url: '/api/v1/jobs', payload: spec });
      expect(res.statusCode, JSON.stringify(spec)).toBe(400);
      expect(fieldsOf(res), JSON.stringify(spec)).toContain(field);
    }
    expect(await h.db.prisma.batchJob.count()).toBe(before);
  });

  it('shows submitters only their own jobs; admins see all', async () => {
    const mine = await submit(h.tokens.submitter, { name: 'mine', command: ['true'] });
    const theirs = await submit(h.tokens.otherSubmitter, { name: 'theirs', image: 'registry.local/sim:1' });
    const list = (await h.call(h.tokens.submitter, { method: 'GET', url: '/api/v1/jobs?limit=200' })).json() as { items: { id: string; submitterUserId: string }[] };
    expect(list.items.map((j) => j.id)).toContain(mine.id);
    expect(list.items.every((j) => j.submitterUserId === h.users.sam)).toBe(true);
    expect((await h.call(h.tokens.submitter, { method: 'GET', url: `/api/v1/jobs/${theirs.id}` })).statusCode).toBe(404);
    const shown = await h.call(h.tokens.submitter, { method: 'GET', url: `/api/v1/jobs/${mine.id}` });
    expect(shown.statusCode).toBe(200);
    expect((shown.json() as { tasks: unknown[] }).tasks).toHaveLength(1);
    const all = (await h.call(h.tokens.admin, { method: 'GET', url: '/api/v1/jobs?limit=200' })).json() as { items: { id: string }[] };
    expect(all.items.map((j) => j.id)).toEqual(expect.arrayContaining([mine.id, theirs.id]));
    const queued = (await h.call(h.tokens.admin, { method: 'GET', url: '/api/v1/jobs?state=succeeded' })).json() as { items: unknown[] };
    expect(queued.items).toEqual([]);
  });

  it('cancels queued tasks at once and leaves live ones for the scheduler to stop', async () => {
    const job = await submit(h.tokens.submitter, { name: 'cancel-me', taskCount: 3, command: ['sleep', '1000'] });
    await h.db.prisma.batchTask.updateMany({ where: { jobId: job.id, index: 0 }, data: { state: 'running' } });
    await h.db.prisma.batchJob.update({ where: { id: job.id }, data: { state: 'running' } });
    expect((await h.call(h.tokens.otherSubmitter, { method: 'POST', url: `/api/v1/jobs/${job.id}/cancel` })).statusCode).toBe(404);
    const res = await h.call(h.tokens.submitter, { method: 'POST', url: `/api/v1/jobs/${job.id}/cancel` });
    expect(res.statusCode).toBe(200);
    const cancelled = res.json() as { state: string; cancelRequestedAt: string | null; finishedAt: string | null; taskStates: Record<string, number> };
    expect(cancelled).toMatchObject({ state: 'cancelled', finishedAt: null, taskStates: { cancelled: 2, running: 1 } });
    expect(cancelled.cancelRequestedAt).not.toBeNull();
    expect((await h.call(h.tokens.admin, { method: 'POST', url: `/api/v1/jobs/${job.id}/cancel` })).statusCode).toBe(200);
    expect(await h.db.prisma.auditEvent.count({ where: { entityId: job.id, action: 'cancel' } })).toBe(1);
  });

  it('refuses to cancel a finished job', async () => {
    const job = await submit(h.tokens.submitter, { name: 'done', command: ['true'] });
    await h.db.prisma.batchJob.update({ where: { id: job.id }, data: { state: 'succeeded' } });
    const res = await h.call(h.tokens.submitter, { method: 'POST', url: `/api/v1/jobs/${job.id}/cancel` });
    expect(res.statusCode).toBe(409);
    expect(errorOf(res).code).toBe('CONFLICT');
  });

  it('refuses desktop users and anonymous callers', async () => {
    expect((await h.call(null, { method: 'POST', url: '/api/v1/jobs', payload: { name: 'x', command: ['a'] } })).statusCode).toBe(401);
    expect((await h.call(h.tokens.user, { method: 'POST', url: '/api/v1/jobs', payload: { name: 'x', command: ['a'] } })).statusCode).toBe(403);
    expect((await h.call(h.tokens.user, { method: 'GET', url: '/api/v1/jobs' })).statusCode).toBe(403);
    expect((await h.call(h.tokens.submitter, { method: 'GET', url: `/api/v1/jobs/${MISSING_ID}` })).statusCode).toBe(404);
  });
});
