// Job logs and results for submitters: GET /jobs/:id/tasks/:index/logs, /jobs/:id/results,
// /jobs/:id/tasks/:index/result. Registered inside the jobs plugin (same roles, same 404 rule).
import { Readable } from 'node:stream';
import type { BatchTask, PrismaClient } from '@deskpool/db';
import { idParamsSchema, jobResultsSchema, taskLogsQuerySchema, taskParamsSchema, TERMINAL_TASK_STATES, type TaskResultView } from '@deskpool/protocol';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { principalOf, type Principal } from '../auth.js';
import type { Clock } from '../clock.js';
import { ApiError, notFound } from '../errors.js';
import { bearer, errorResponses } from '../route-deps.js';
import { ownedBy } from '../routes/job-access.js';
import { assemble, droppedMarker, type LogPosition } from './assemble.js';
import { TaskOutputStore } from './store.js';

export interface TaskOutputRouteOptions {
  prisma: PrismaClient;
  clock: Clock;
  /** How often a follower looks for new output (every API process reads the same tables). */
  followPollMs?: number;
  /** How long a follower waits for a missing piece to arrive before marking the gap. */
  followGapGraceMs?: number;
}

const DEFAULT_FOLLOW_POLL_MS = 500;
const DEFAULT_FOLLOW_GAP_GRACE_MS = 3000;
const TEXT = 'text/plain; charset=utf-8';

const isTerminal = (state: string): boolean => (TERMINAL_TASK_STATES as readonly string[]).includes(state);

export const taskOutputRoutes: FastifyPluginAsyncZod<TaskOutputRouteOptions> = async (app, options) => {
  const { prisma } = options;
  const store = new TaskOutputStore(prisma, { clock: options.clock });
  const pollMs = options.followPollMs ?? DEFAULT_FOLLOW_POLL_MS;
  const gapGraceMs = options.followGapGraceMs ?? DEFAULT_FOLLOW_GAP_GRACE_MS;
  const tags = ['jobs'];

  /** The task, if the caller may see its job; otherwise 404 naming what was not found. */
  async function visibleTask(p: Principal, jobId: string, index: number): Promise<BatchTask> {
    const job = await prisma.batchJob.findUnique({ where: { id: jobId } });
    if (!ownedBy(p, job)) throw notFound('job', jobId);
    const task = await prisma.batchTask.findUnique({ where: { jobId_index: { jobId, index } } });
    if (!task) {
      throw new ApiError(404, 'NOT_FOUND', `job ${jobId} has no task ${index}; its tasks are 0..${job.taskCount - 1}`, {
        issues: [{ location: 'params', path: ['index'], message: `must be below the job's taskCount (${job.taskCount})` }],
      });
    }
    return task;
  }

  async function readAll(taskId: string): Promise<string> {
    const meta = await store.logMeta(taskId);
    let text = meta.droppedBytes > 0 ? droppedMarker(meta.droppedBytes, store.maxLogBytesPerTask) : '';
    let position: LogPosition | null = null;
    for (;;) {
      const chunks = await store.chunksAfter(taskId, position);
      if (chunks.length === 0) return text;
      const part = assemble(chunks, position);
      text += part.text;
      position = part.position;
    }
  }

  async function* follow(taskId: string, signal: AbortSignal): AsyncGenerator<string> {
    const meta = await store.logMeta(taskId);
    if (meta.droppedBytes > 0) yield droppedMarker(meta.droppedBytes, store.maxLogBytesPerTask);
    let position: LogPosition | null = null;
    let gapSeenAt: number | null = null;
    while (!signal.aborted) {
      // State first, then output: output written before the task ended is then always read.
      const task = await prisma.batchTask.findUnique({ where: { id: taskId }, select: { state: true } });
      const ended = task === null || isTerminal(task.state);
      const chunks = await store.chunksAfter(taskId, position);
      const waitForGap = !ended && (gapSeenAt === null || Date.now() - gapSeenAt < gapGraceMs);
      const part = assemble(chunks, position, { stopAtGap: waitForGap });
      position = part.position;
      gapSeenAt = part.stoppedAtGap ? (gapSeenAt ?? Date.now()) : null;
      if (part.text !== '') yield part.text;
      if (ended && chunks.length === 0) return;
      if (!ended || part.stoppedAtGap) await sleep(pollMs, signal);
    }
  }

  app.get('/:id/tasks/:index/logs', {
    schema: {
      tags,
      security: bearer,
      summary: "A task's console output",
      description: 'Plain text. With follow=true the answer stays open and new output is streamed (chunked) until the task ends.',
      params: taskParamsSchema,
      querystring: taskLogsQuerySchema,
      produces: ['text/plain'],
      response: { 200: z.string().describe('the console output'), ...errorResponses },
    },
  }, async (request, reply) => {
    const { id, index } = request.params;
    const task = await visibleTask(principalOf(request), id, index);
    const following = request.query.follow === 'true' || request.query.follow === '1';
    reply.type(TEXT);
    if (!following) return reply.send(await readAll(task.id));
    const abort = new AbortController();
    reply.raw.on('close', () => abort.abort());
    reply.header('cache-control', 'no-store').header('x-accel-buffering', 'no');
    // The 200 schema documents text; a stream of that text is what is sent (fastify pipes it).
    const stream = Readable.from(follow(task.id, abort.signal), { objectMode: false });
    return reply.send(stream as unknown as string);
  });

  app.get('/:id/results', {
    schema: { tags, security: bearer, summary: "Each task's state, attempts, exit code and result", params: idParamsSchema, response: { 200: jobResultsSchema, ...errorResponses } },
  }, async (request) => {
    const { id } = request.params;
    const job = await prisma.batchJob.findUnique({ where: { id }, include: { tasks: { orderBy: { index: 'asc' }, include: { result: true, outputLog: true } } } });
    if (!ownedBy(principalOf(request), job)) throw notFound('job', id);
    const tasks: TaskResultView[] = job.tasks.map((t) => ({
      index: t.index,
      taskId: t.id,
      state: t.state,
      attempts: t.attempts,
      exitCode: t.result?.exitCode ?? t.exitStatus,
      result: t.result?.result ?? null,
      reason: t.result?.reason ?? null,
      resultGeneration: t.result?.generation ?? null,
      reportedAt: t.result ? t.result.at.toISOString() : null,
      finishedAt: t.finishedAt ? t.finishedAt.toISOString() : null,
      logBytes: Number(t.outputLog?.storedBytes ?? 0n),
      logDroppedBytes: Number(t.outputLog?.droppedBytes ?? 0n),
    }));
    return { jobId: job.id, state: job.state, tasks };
  });

  app.get('/:id/tasks/:index/result', {
    schema: {
      tags,
      security: bearer,
      summary: "Download one task's result",
      description: 'The result text the guest reported, as a file; 404 until the task has reported one.',
      params: taskParamsSchema,
      produces: ['text/plain'],
      response: { 200: z.string().describe('the result'), ...errorResponses },
    },
  }, async (request, reply) => {
    const { id, index } = request.params;
    const task = await visibleTask(principalOf(request), id, index);
    const result = await prisma.taskResult.findUnique({ where: { taskId: task.id } });
    if (result === null || result.result === null) {
      throw new ApiError(404, 'NOT_FOUND', `task ${index} of job ${id} has no result yet (it is ${task.state}); see its logs meanwhile`);
    }
    return reply
      .type(TEXT)
      .header('content-disposition', `attachment; filename="job-${id}-task-${index}.result.txt"`)
      .header('x-deskpool-exit-code', result.exitCode === null ? 'none' : String(result.exitCode))
      .send(result.result);
  });
};

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
