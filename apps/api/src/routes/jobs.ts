import { recordAudit, type Prisma, type PrismaClient } from '@deskpool/db';
import { idParamsSchema, jobSchema, jobSpecSchema, jobWithTasksSchema, listJobsQuerySchema, LIVE_TASK_STATES, pageSchema, TERMINAL_JOB_STATES } from '@deskpool/protocol';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { allow, apiCause, principalOf } from '../auth.js';
import { ApiError, invalidField, notFound } from '../errors.js';
import { lockRow } from '../locks.js';
import { afterCreatedAt, createdAtOrder, decodeCreatedAtCursor, encodeCreatedAtCursor, toPage } from '../pagination.js';
import { notifySafely } from '../notifier.js';
import { presentJob, presentTask } from '../presenters.js';
import { bearer, errorResponses, type RouteDeps } from '../route-deps.js';
import { taskOutputRoutes } from '../task-output/routes.js';
import { ownedBy } from './job-access.js';


async function taskStatesOf(db: PrismaClient | Prisma.TransactionClient, jobIds: string[]): Promise<Map<string, Record<string, number>>> {
  const groups = await db.batchTask.groupBy({ by: ['jobId', 'state'], where: { jobId: { in: jobIds } }, _count: { _all: true } });
  const out = new Map<string, Record<string, number>>(jobIds.map((id) => [id, {}]));
  for (const g of groups) out.get(g.jobId)![g.state] = g._count._all;
  return out;
}

export const jobRoutes: FastifyPluginAsyncZod<RouteDeps> = async (app, { prisma, clock, scheduler }) => {
  app.addHook('onRequest', allow('admin', 'submitter'));
  const tags = ['jobs'];
  await app.register(taskOutputRoutes, { prisma, clock });

  app.post('/', { schema: { tags, security: bearer, body: jobSpecSchema, response: { 201: jobSchema, ...errorResponses } } }, async (request, reply) => {
    const p = principalOf(request);
    const spec = request.body;
    const now = clock.now();
    if (spec.deadline !== undefined && Date.parse(spec.deadline) <= now.getTime()) throw invalidField('body', ['deadline'], 'must be in the future');
    const job = await prisma.$transaction(async (tx) => {
      if (spec.poolId !== undefined && !(await tx.pool.findUnique({ where: { id: spec.poolId }, select: { id: true } }))) {
        throw invalidField('body', ['poolId'], `no pool ${spec.poolId}`);
      }
      const created = await tx.batchJob.create({
        data: {
          name: spec.name,
          submitterUserId: p.userId,
          submittedBy: p.actor,
          poolId: spec.poolId ?? null,
          spec,
          priority: spec.priority,
          taskCount: spec.taskCount,
          deadline: spec.deadline !== undefined ? new Date(spec.deadline) : null,
          state: 'queued',
          createdAt: now,
        },
      });
      await tx.batchTask.createMany({ data: Array.from({ length: spec.taskCount }, (_, index) => ({ jobId: created.id, index, state: 'queued' as const })) });
      await recordAudit(tx, { entityType: 'job', entityId: created.id, action: 'submit', actor: p.actor, cause: apiCause(request), after: created });
      return created;
    });
    await notifySafely(request.log, 'jobSubmitted', scheduler && (() => scheduler.publishJobSubmitted({ jobId: job.id })));
    return reply.status(201).send(presentJob(job, { queued: job.taskCount }));
  });

  app.get('/', { schema: { tags, security: bearer, querystring: listJobsQuerySchema, response: { 200: pageSchema(jobSchema), ...errorResponses } } }, async (request) => {
    const p = principalOf(request);
    const { limit, cursor, state } = request.query;
    const where: Prisma.BatchJobWhereInput = {
      ...afterCreatedAt(decodeCreatedAtCursor(cursor)),
      ...(state !== undefined && { state }),
      ...(p.role !== 'admin' && { submitterUserId: p.userId ?? '00000000-0000-0000-0000-000000000000' }),
    };
    const rows = await prisma.batchJob.findMany({ where, orderBy: createdAtOrder, take: limit + 1 });
    const states = await taskStatesOf(prisma, rows.map((r) => r.id));
    return toPage(rows, limit, (j) => presentJob(j, states.get(j.id) ?? {}), encodeCreatedAtCursor);
  });

  app.get('/:id', { schema: { tags, security: bearer, params: idParamsSchema, response: { 200: jobWithTasksSchema, ...errorResponses } } }, async (request) => {
    const p = principalOf(request);
    const job = await prisma.batchJob.findUnique({ where: { id: request.params.id }, include: { tasks: { orderBy: { index: 'asc' } } } });
    if (!ownedBy(p, job)) throw notFound('job', request.params.id);
    const states: Record<string, number> = {};
    for (const t of job.tasks) states[t.state] = (states[t.state] ?? 0) + 1;
    return { ...presentJob(job, states), tasks: job.tasks.map(presentTask) };
  });

  app.post('/:id/cancel', { schema: { tags, security: bearer, params: idParamsSchema, response: { 200: jobSchema, ...errorResponses } } }, async (request) => {
    const p = principalOf(request);
    const { id } = request.params;
    const now = clock.now();
    const { job, changed } = await prisma.$transaction(async (tx) => {
      if (!(await lockRow(tx, 'batch_jobs', id))) throw notFound('job', id);
      const before = await tx.batchJob.findUniqueOrThrow({ where: { id } });
      if (!ownedBy(p, before)) throw notFound('job', id);
      if (before.state === 'cancelled') return { job: before, changed: false }; // cancelling twice changes nothing
      if ((TERMINAL_JOB_STATES as readonly string[]).includes(before.state)) {
        throw new ApiError(409, 'CONFLICT', `job ${id} already ended (${before.state}); there is nothing to cancel`);
      }
      // Queued tasks end here. Live ones (LIVE_TASK_STATES) hold a VM or saved state on a
      // host: the scheduler sees cancelRequestedAt, stops them there and marks them cancelled.
      const cancelled = await tx.batchTask.updateMany({ where: { jobId: id, state: 'queued' }, data: { state: 'cancelled', finishedAt: now, version: { increment: 1 } } });
      const live = await tx.batchTask.count({ where: { jobId: id, state: { in: [...LIVE_TASK_STATES] } } });
      const after = await tx.batchJob.update({
        where: { id },
        data: { state: 'cancelled', cancelRequestedAt: now, finishedAt: live === 0 ? now : null, version: { increment: 1 } },
      });
      await recordAudit(tx, {
        entityType: 'job', entityId: id, action: 'cancel', actor: p.actor, cause: apiCause(request),
        before, after: { ...after, queuedTasksCancelled: cancelled.count, liveTasksToStop: live },
      });
      return { job: after, changed: true };
    });
    if (changed) await notifySafely(request.log, 'jobCancelled', scheduler && (() => scheduler.publishJobCancelled({ jobId: job.id })));
    const states = await taskStatesOf(prisma, [job.id]);
    return presentJob(job, states.get(job.id) ?? {});
  });
};
