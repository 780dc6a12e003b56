// Job logs and results: storage rules (idempotent chunks, gaps, size cap, results) and the REST
// routes (owner-only, field-naming errors, follow streaming over a real socket).
import type { TaskFinishedFrame, TaskOutputFrame } from '@deskpool/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyUpFrame } from '../src/agent/frames.js';
import { HeartbeatWriter } from '../src/agent/heartbeats.js';
import { systemClock } from '../src/clock.js';
import { gapMarker } from '../src/task-output/assemble.js';
import { TaskOutputStore } from '../src/task-output/store.js';
import { errorOf, fieldsOf, MISSING_ID, startHarness, type Harness } from './helpers.js';

let h: Harness;
let store: TaskOutputStore;
beforeAll(async () => {
  h = await startHarness();
  store = new TaskOutputStore(h.db.prisma);
});
afterAll(async () => {
  await h.close();
});

const at = '2026-11-26T12:00:00.000Z';

async function submitJob(token: string, taskCount = 2): Promise<{ jobId: string; taskIds: string[] }> {
  const res = await h.call(token, { method: 'POST', url: '/api/v1/jobs', payload: { name: 'count', taskCount, command: ['count-to', '100'] } });
  expect(res.statusCode, res.body).toBe(201);
  const jobId = (res.json() as { id: string }).id;
  const tasks = await h.db.prisma.batchTask.findMany({ where: { jobId }, orderBy: { index: 'asc' } });
  return { jobId, taskIds: tasks.map((t) => t.id) };
}

const logsOf = (token: string, jobId: string, index: number | string) => h.call(token, { method: 'GET', url: `/api/v1/jobs/${jobId}/tasks/${index}/logs` });

describe('task output storage', () => {
  it('stores a replayed chunk once and shows the log in stream order', async () => {
    const { jobId, taskIds: [taskId] } = await submitJob(h.tokens.submitter);
    expect(await store.appendPiece({ taskId: taskId!, generation: 1, offset: 0, data: '1\n2\n', at })).toBe('stored');
    expect(await store.appendPiece({ taskId: taskId!, generation: 1, offset: 4, data: '3\n', at })).toBe('stored');
    expect(await store.appendPiece({ taskId: taskId!, generation: 1, offset: 0, data: '1\n2\n', at })).toBe('duplicate');
    expect(await h.db.prisma.taskOutputChunk.count({ where: { taskId: taskId! } })).toBe(2);
    const res = await logsOf(h.tokens.submitter, jobId, 0);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.body).toBe('1\n2\n3\n');
  });

  it('records a gap instead of inventing the missing output', async () => {
    const { jobId, taskIds: [taskId] } = await submitJob(h.tokens.submitter);
    await store.appendPiece({ taskId: taskId!, generation: 1, offset: 0, data: 'abc', at });
    await store.appendPiece({ taskId: taskId!, generation: 1, offset: 10, data: 'xyz', at });
    expect((await logsOf(h.tokens.submitter, jobId, 0)).body).toBe(`abc${gapMarker(7)}xyz`);
  });

  it('keeps the newest bytes under the cap, says how much was dropped, and ignores replays of dropped chunks', async () => {
    const capped = new TaskOutputStore(h.db.prisma, { maxLogBytesPerTask: 25 });
    const { jobId, taskIds: [taskId] } = await submitJob(h.tokens.submitter);
    for (let i = 0; i < 4; i++) await capped.appendPiece({ taskId: taskId!, generation: 1, offset: i * 10, data: String(i).repeat(10), at });
    expect(await capped.logMeta(taskId!)).toEqual({ storedBytes: 20, droppedBytes: 20 });
    expect(await capped.appendPiece({ taskId: taskId!, generation: 1, offset: 0, data: '0'.repeat(10), at })).toBe('dropped');
    const body = (await logsOf(h.tokens.submitter, jobId, 0)).body;
    expect(body).toMatch(/^\[deskpool: the first 20 bytes of output were dropped/);
    expect(body.endsWith('2222222222' + '3333333333')).toBe(true);
    const results = (await h.call(h.tokens.submitter, { method: 'GET', url: `/api/v1/jobs/${jobId}/results` })).json() as { tasks: { logBytes: number; logDroppedBytes: number }[] };
    expect(results.tasks[0]).toMatchObject({ logBytes: 20, logDroppedBytes: 20 });
  });

  it('records a result once per generation; a newer generation replaces it, an older one does not', async () => {
    const { taskIds: [taskId] } = await submitJob(h.tokens.submitter);
    expect(await store.recordFinished({ taskId: taskId!, generation: 2, exitCode: 0, result: '100', at })).toBe('recorded');
    expect(await store.recordFinished({ taskId: taskId!, generation: 2, exitCode: 1, result: 'replay', at })).toBe('unchanged');
    expect(await store.recordFinished({ taskId: taskId!, generation: 1, exitCode: 3, at })).toBe('unchanged');
    expect(await h.db.prisma.taskResult.findUniqueOrThrow({ where: { taskId: taskId! } })).toMatchObject({ generation: 2, exitCode: 0, result: '100' });
    expect(await store.recordFinished({ taskId: taskId!, generation: 3, exitCode: null, reason: 'crashed', at })).toBe('recorded');
    expect(await h.db.prisma.taskResult.findUniqueOrThrow({ where: { taskId: taskId! } })).toMatchObject({ generation: 3, exitCode: null, result: null, reason: 'crashed' });
  });

  it('ignores output and results for tasks that do not exist', async () => {
    expect(await store.appendPiece({ taskId: MISSING_ID, generation: 1, offset: 0, data: 'x', at })).toBe('unknown-task');
    expect(await store.appendPiece({ taskId: 'not-a-uuid', generation: 1, offset: 0, data: 'x', at })).toBe('unknown-task');
    expect(await store.recordFinished({ taskId: MISSING_ID, generation: 1, exitCode: 0, at })).toBe('unknown-task');
  });
});

describe('from agent frames to job logs', () => {
  it('stores the frames the gateway accepts (replays once) and serves them as the log and result', async () => {
    const { jobId, taskIds: [taskId] } = await submitJob(h.tokens.submitter);
    const pool = await h.db.prisma.pool.create({ data: { name: 'frames-pool', timeZone: 'UTC' } });
    const host = await h.db.prisma.host.create({ data: { name: 'pc-frames', poolId: pool.id } });
    await h.db.prisma.batchTask.update({ where: { id: taskId! }, data: { state: 'running', hostId: host.id, generation: 1 } });
    await h.db.prisma.operation.create({ data: { idempotencyKey: `run-${taskId}`, hostId: host.id, taskId: taskId!, kind: 'run-batch', generation: 1 } });
    const ctx = {
      prisma: h.db.prisma, redis: h.redis, clock: systemClock, credentialId: 'unused', heartbeats: new HeartbeatWriter(h.db.prisma, systemClock),
      keyPrefix: `dpt-job-output-${taskId}:`, hostId: host.id, hostName: host.name, taskOutput: store,
    };
    const out = (seq: number, offset: number, data: string): TaskOutputFrame => ({ type: 'task-output', seq, at, taskId: taskId!, generation: 1, offset, data });
    for (const frame of [out(1, 0, 'PROGRESS 1/2\n'), out(2, 13, 'PROGRESS 2/2\n'), out(2, 13, 'PROGRESS 2/2\n')]) expect(await applyUpFrame(ctx, frame)).toBeNull();
    const done: TaskFinishedFrame = { type: 'task-finished', seq: 3, at, taskId: taskId!, generation: 1, exitCode: 0, result: 'count=2' };
    expect(await applyUpFrame(ctx, done)).toBeNull();
    expect((await logsOf(h.tokens.submitter, jobId, 0)).body).toBe('PROGRESS 1/2\nPROGRESS 2/2\n');
    const results = (await h.call(h.tokens.submitter, { method: 'GET', url: `/api/v1/jobs/${jobId}/results` })).json() as { tasks: unknown[] };
    expect(results.tasks[0]).toMatchObject({ exitCode: 0, result: 'count=2', resultGeneration: 1 });
    await h.redis.del(`${ctx.keyPrefix}events`);
  });
});

describe('job logs and results over REST', () => {
  it('lists each task with state, attempts, exit code and result, and downloads one result', async () => {
    const { jobId, taskIds } = await submitJob(h.tokens.submitter, 2);
    await h.db.prisma.batchTask.update({ where: { id: taskIds[0]! }, data: { state: 'succeeded', attempts: 1, generation: 2 } });
    await store.recordFinished({ taskId: taskIds[0]!, generation: 2, exitCode: 0, result: 'count=100', at });
    const res = await h.call(h.tokens.submitter, { method: 'GET', url: `/api/v1/jobs/${jobId}/results` });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json() as { jobId: string; tasks: Record<string, unknown>[] };
    expect(body.jobId).toBe(jobId);
    expect(body.tasks).toEqual([
      expect.objectContaining({ index: 0, state: 'succeeded', attempts: 1, exitCode: 0, result: 'count=100', resultGeneration: 2, reportedAt: at }),
      expect.objectContaining({ index: 1, state: 'queued', attempts: 0, exitCode: null, result: null, reportedAt: null }),
    ]);
    const file = await h.call(h.tokens.submitter, { method: 'GET', url: `/api/v1/jobs/${jobId}/tasks/0/result` });
    expect(file.statusCode).toBe(200);
    expect(file.body).toBe('count=100');
    expect(file.headers['content-disposition']).toContain('attachment');
    expect(file.headers['x-deskpool-exit-code']).toBe('0');
    const none = await h.call(h.tokens.submitter, { method: 'GET', url: `/api/v1/jobs/${jobId}/tasks/1/result` });
    expect(none.statusCode).toBe(404);
    expect(errorOf(none).message).toContain('no result yet');
    const admin = await h.call(h.tokens.admin, { method: 'GET', url: `/api/v1/jobs/${jobId}/results` });
    expect(admin.statusCode).toBe(200);
  });

  it('answers 404 to anyone but the submitter and admins, and 403 to desktop users', async () => {
    const { jobId, taskIds } = await submitJob(h.tokens.submitter);
    await store.appendPiece({ taskId: taskIds[0]!, generation: 1, offset: 0, data: 'secret output', at });
    await store.recordFinished({ taskId: taskIds[0]!, generation: 1, exitCode: 0, result: 'secret', at });
    for (const url of [`/api/v1/jobs/${jobId}/tasks/0/logs`, `/api/v1/jobs/${jobId}/tasks/0/logs?follow=true`, `/api/v1/jobs/${jobId}/results`, `/api/v1/jobs/${jobId}/tasks/0/result`]) {
      const other = await h.call(h.tokens.otherSubmitter, { method: 'GET', url });
      expect(other.statusCode, url).toBe(404);
      expect(other.body).not.toContain('secret');
      expect((await h.call(h.tokens.user, { method: 'GET', url })).statusCode, url).toBe(403);
      expect((await h.call(null, { method: 'GET', url })).statusCode, url).toBe(401);
    }
    expect((await logsOf(h.tokens.admin, jobId, 0)).body).toBe('secret output');
  });

  it('names the bad field of a bad id, index or query', async () => {
    const { jobId } = await submitJob(h.tokens.submitter, 2);
    const cases: [string, number, string][] = [
      [`/api/v1/jobs/not-a-uuid/tasks/0/logs`, 400, 'params.id'],
      [`/api/v1/jobs/${jobId}/tasks/x/logs`, 400, 'params.index'],
      [`/api/v1/jobs/${jobId}/tasks/-1/logs`, 400, 'params.index'],
      [`/api/v1/jobs/${jobId}/tasks/2/logs`, 404, 'params.index'],
      [`/api/v1/jobs/${jobId}/tasks/0/logs?follow=maybe`, 400, 'query.follow'],
      [`/api/v1/jobs/${jobId}/tasks/0/logs?tail=5`, 400, 'query.tail'],
      [`/api/v1/jobs/not-a-uuid/results`, 400, 'params.id'],
      [`/api/v1/jobs/${jobId}/tasks/1.5/result`, 400, 'params.index'],
    ];
    for (const [url, status, field] of cases) {
      const res = await h.call(h.tokens.submitter, { method: 'GET', url });
      expect(res.statusCode, url).toBe(status);
      expect(fieldsOf(res), url).toContain(field);
    }
    expect((await h.call(h.tokens.submitter, { method: 'GET', url: `/api/v1/jobs/${MISSING_ID}/results` })).statusCode).toBe(404);
  });

  it('follows a task: streams output as it arrives and ends when the task ends', async () => {
    const { jobId, taskIds: [taskId] } = await submitJob(h.tokens.submitter);
    await h.db.prisma.batchTask.update({ where: { id: taskId! }, data: { state: 'running', generation: 1 } });
    await store.appendPiece({ taskId: taskId!, generation: 1, offset: 0, data: '1\n', at });
    const address = await h.app.listen({ port: 0, host: '127.0.0.1' });
    const res = await fetch(`${address}/api/v1/jobs/${jobId}/tasks/0/logs?follow=true`, { headers: { authorization: `Bearer ${h.tokens.submitter}` } });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let seen = '';
    const readUntil = async (want: string) => {
      while (!seen.includes(want)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before ${JSON.stringify(want)}; got ${JSON.stringify(seen)}`);
        seen += decoder.decode(value, { stream: true });
      }
    };
    await readUntil('1\n');
    // Output written while the reader waits reaches it without a new request.
    await store.appendPiece({ taskId: taskId!, generation: 1, offset: 2, data: '2\n', at });
    await readUntil('2\n');
    await store.appendPiece({ taskId: taskId!, generation: 2, offset: 0, data: '3\n', at });
    await h.db.prisma.batchTask.update({ where: { id: taskId! }, data: { state: 'succeeded' } });
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += decoder.decode(value, { stream: true });
    }
    expect(seen).toBe('1\n2\n3\n');
  });

  it('a follower of a finished task gets the whole log and the answer ends', async () => {
    const { jobId, taskIds: [taskId] } = await submitJob(h.tokens.submitter);
    await store.appendPiece({ taskId: taskId!, generation: 1, offset: 0, data: 'a', at });
    await store.appendPiece({ taskId: taskId!, generation: 1, offset: 3, data: 'b', at });
    await h.db.prisma.batchTask.update({ where: { id: taskId! }, data: { state: 'failed' } });
    const res = await h.call(h.tokens.submitter, { method: 'GET', url: `/api/v1/jobs/${jobId}/tasks/0/logs?follow=1` });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe(`a${gapMarker(2)}b`);
  });
});

describe('bad job specs and other submitters (issue 7)', () => {
  it('answers 4xx naming the field for missing fields, negative resources, unknown constraints and oversized specs', async () => {
    const before = await h.db.prisma.batchJob.count();
    const cases: [unknown, string][] = [
      [{ command: ['a'] }, 'body.name'],
      [{ name: 'x', command: ['a'], cores: -2 }, 'body.cores'],
      [{ name: 'x', command: ['a'], diskGiB: -1 }, 'body.diskGiB'],
      [{ name: 'x', command: ['a'], constraints: [{ attribute: 'gpu', operator: 'like', value: 'x' }] }, 'body.constraints.0.operator'],
      [{ name: 'x', command: ['a'], constraints: [{ attribute: 'gpu', operator: '==', value: 'x', weight: 3 }] }, 'body.constraints.0'],
      [{ name: 'x', command: ['a'], constraints: [{ attribute: 'colour', operator: '==', value: 'red' }] }, 'body.constraints.0.attribute'],
      [{ name: 'x', command: ['a'], cores: 100_000 }, 'body.cores'],
      [{ name: 'x', command: Array.from({ length: 300 }, () => 'a') }, 'body.command'],
    ];
    for (const [spec, field] of cases) {
      const res = await h.call(h.tokens.submitter, { method: 'POST', url: '/api/v1/jobs', payload: spec as Record<string, unknown> });
      expect(res.statusCode, JSON.stringify(spec).slice(0, 200)).toBe(400);
      expect(fieldsOf(res).some((f) => f === field || f.startsWith(`${field}.`)), `${field} in ${fieldsOf(res).join(',')}`).toBe(true);
    }
    const huge = await h.call(h.tokens.submitter, { method: 'POST', url: '/api/v1/jobs', payload: { name: 'x', command: ['a'], env: { BIG: 'x'.repeat(2 * 1024 * 1024) } } });
    expect(huge.statusCode).toBe(413);
    expect(await h.db.prisma.batchJob.count()).toBe(before);
  });

  it('a submitter can neither see nor cancel another submitter’s job', async () => {
    const { jobId } = await submitJob(h.tokens.otherSubmitter);
    expect((await h.call(h.tokens.submitter, { method: 'GET', url: `/api/v1/jobs/${jobId}` })).statusCode).toBe(404);
    expect((await h.call(h.tokens.submitter, { method: 'POST', url: `/api/v1/jobs/${jobId}/cancel` })).statusCode).toBe(404);
    const list = (await h.call(h.tokens.submitter, { method: 'GET', url: '/api/v1/jobs?limit=200' })).json() as { items: { id: string }[] };
    expect(list.items.map((j) => j.id)).not.toContain(jobId);
    expect((await h.db.prisma.batchJob.findUniqueOrThrow({ where: { id: jobId } })).state).toBe('queued');
  });
});
