import { recordAudit, type Prisma } from '@deskpool/db';
import { hostSchema, LIVE_TASK_STATES, idParamsSchema, listHostsQuerySchema, pageSchema, updateHostSchema } from '@deskpool/protocol';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { allow, apiCause, principalOf, type Principal } from '../auth.js';
import { ApiError, inUse, invalidField, notFound, versionConflict } from '../errors.js';
import { lockRow } from '../locks.js';
import { afterCreatedAt, createdAtOrder, decodeCreatedAtCursor, encodeCreatedAtCursor, toPage } from '../pagination.js';
import { presentHost } from '../presenters.js';
import { bearer, deletedResponses, errorResponses, type RouteDeps } from '../route-deps.js';


export const hostRoutes: FastifyPluginAsyncZod<RouteDeps> = async (app, { prisma, scheduler }) => {
  app.addHook('onRequest', allow('admin'));
  const tags = ['hosts'];

  app.get('/', { schema: { tags, security: bearer, querystring: listHostsQuerySchema, response: { 200: pageSchema(hostSchema), ...errorResponses } } }, async (request) => {
    const { limit, cursor, poolId, state } = request.query;
    const where: Prisma.HostWhereInput = {
      ...afterCreatedAt(decodeCreatedAtCursor(cursor)),
      ...(poolId !== undefined && { poolId }),
      ...(state !== undefined && { onlineState: state }),
    };
    const rows = await prisma.host.findMany({ where, orderBy: createdAtOrder, take: limit + 1 });
    return toPage(rows, limit, presentHost, encodeCreatedAtCursor);
  });

  app.get('/:id', { schema: { tags, security: bearer, params: idParamsSchema, response: { 200: hostSchema, ...errorResponses } } }, async (request) => {
    const host = await prisma.host.findUnique({ where: { id: request.params.id } });
    if (!host) throw notFound('host', request.params.id);
    return presentHost(host);
  });

  app.patch('/:id', { schema: { tags, security: bearer, params: idParamsSchema, body: updateHostSchema, response: { 200: hostSchema, ...errorResponses } } }, async (request) => {
    const p = principalOf(request);
    const { id } = request.params;
    const { version, poolId, ownerUserId, labels } = request.body;
    return presentHost(
      await prisma.$transaction(async (tx) => {
        if (!(await lockRow(tx, 'hosts', id))) throw notFound('host', id);
        const before = await tx.host.findUniqueOrThrow({ where: { id } });
        if (version !== undefined && version !== before.version) throw versionConflict('host', id, version, before.version);
        if (poolId !== undefined && !(await tx.pool.findUnique({ where: { id: poolId }, select: { id: true } }))) {
          throw invalidField('body', ['poolId'], `no pool ${poolId}`);
        }
        if (ownerUserId != null && !(await tx.user.findUnique({ where: { id: ownerUserId }, select: { id: true } }))) {
          throw invalidField('body', ['ownerUserId'], `no user ${ownerUserId}`);
        }
        const after = await tx.host.update({
          where: { id },
          data: {
            ...(poolId !== undefined && { poolId }),
            ...(ownerUserId !== undefined && { ownerUserId }),
            ...(labels !== undefined && { labels }),
            version: { increment: 1 },
          },
        });
        await recordAudit(tx, { entityType: 'host', entityId: id, action: 'update', actor: p.actor, cause: apiCause(request), before, after });
        return after;
      }),
    );
  });

  app.delete('/:id', { schema: { tags, security: bearer, params: idParamsSchema, response: deletedResponses } }, async (request, reply) => {
    const p = principalOf(request);
    const { id } = request.params;
    await prisma.$transaction(async (tx) => {
      if (!(await lockRow(tx, 'hosts', id))) throw notFound('host', id);
      const vms = await tx.desktopVm.count({ where: { OR: [{ currentHostId: id }, { savedStateHostId: id }] } });
      const tasks = await tx.batchTask.count({
        where: { state: { in: [...LIVE_TASK_STATES] }, OR: [{ hostId: id }, { checkpointHostId: id }] },
      });
      if (vms > 0 || tasks > 0) {
        throw inUse(`host ${id} still holds ${vms} desktop VM(s) and ${tasks} batch task(s); drain it and move them first`, { vms, tasks });
      }
      const revoked = await tx.hostCredential.updateMany({ where: { hostId: id, revokedAt: null }, data: { revokedAt: new Date() } });
      const before = await tx.host.delete({ where: { id } });
      await recordAudit(tx, {
        entityType: 'host',
        entityId: id,
        action: 'delete',
        actor: p.actor,
        cause: apiCause(request),
        before,
        after: { credentialsRevoked: revoked.count },
      });
    });
    return reply.status(204).send(null);
  });

  const setDrained = (drained: boolean) => async (request: { params: { id: string } } & Parameters<typeof apiCause>[0]) => {
    const p: Principal = principalOf(request);
    const { id } = request.params;
    return presentHost(
      await prisma.$transaction(async (tx) => {
        if (!(await lockRow(tx, 'hosts', id))) throw notFound('host', id);
        const before = await tx.host.findUniqueOrThrow({ where: { id } });
        if (before.drained === drained) return before; // already so: nothing changes, nothing to audit
        const after = await tx.host.update({ where: { id }, data: { drained, version: { increment: 1 } } });
        await recordAudit(tx, { entityType: 'host', entityId: id, action: drained ? 'drain' : 'undrain', actor: p.actor, cause: apiCause(request), before, after });
        return after;
      }),
    );
  };

  app.post('/:id/drain', { schema: { tags, security: bearer, params: idParamsSchema, response: { 200: hostSchema, ...errorResponses } } }, setDrained(true));
  app.post('/:id/undrain', { schema: { tags, security: bearer, params: idParamsSchema, response: { 200: hostSchema, ...errorResponses } } }, setDrained(false));

  // An admin's word that a silent PC is really powered off: desktops LOST there cannot be running
  // there, so the scheduler may restart them elsewhere. Only the scheduler acts on it, so if it
  // cannot be told, the request fails (503) rather than pretend.
  app.post('/:id/fence', { schema: { tags, security: bearer, params: idParamsSchema, response: { 202: hostSchema, ...errorResponses } } }, async (request, reply) => {
    const p = principalOf(request);
    const { id } = request.params;
    if (!scheduler) throw new ApiError(503, 'SERVICE_UNAVAILABLE', 'no scheduler is configured to act on a fence confirmation');
    const { host, eventId } = await prisma.$transaction(async (tx) => {
      if (!(await lockRow(tx, 'hosts', id))) throw notFound('host', id);
      const host = await tx.host.findUniqueOrThrow({ where: { id } });
      if (host.onlineState === 'online') {
        throw new ApiError(409, 'CONFLICT', `host ${host.name} is online; fence only a PC you have confirmed is powered off`);
      }
      const eventId = await recordAudit(tx, { entityType: 'host', entityId: id, action: 'fence-confirmed', actor: p.actor, cause: apiCause(request), before: host });
      return { host, eventId };
    });
    try {
      await scheduler.publishHostFenced({ hostId: id, requestId: `audit${eventId}` });
    } catch (err) {
      request.log.error({ err }, 'could not hand the fence confirmation to the scheduler');
      throw new ApiError(503, 'SERVICE_UNAVAILABLE', 'the confirmation could not be handed to the scheduler; retry');
    }
    return reply.status(202).send(presentHost(host));
  });
};
