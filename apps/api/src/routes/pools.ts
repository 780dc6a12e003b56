import { recordAudit } from '@deskpool/db';
import { createPoolSchema, idParamsSchema, pageQuerySchema, pageSchema, POOL_DEFAULTS, poolSchema, updatePoolSchema } from '@deskpool/protocol';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { allow, apiCause, principalOf } from '../auth.js';
import { inUse, notFound, versionConflict } from '../errors.js';
import { lockRow } from '../locks.js';
import { afterCreatedAt, createdAtOrder, decodeCreatedAtCursor, encodeCreatedAtCursor, toPage } from '../pagination.js';
import { presentPool } from '../presenters.js';
import { bearer, deletedResponses, errorResponses, type RouteDeps } from '../route-deps.js';

export const poolRoutes: FastifyPluginAsyncZod<RouteDeps> = async (app, { prisma }) => {
  app.addHook('onRequest', allow('admin'));
  const tags = ['pools'];

  app.post('/', { schema: { tags, security: bearer, body: createPoolSchema, response: { 201: poolSchema, ...errorResponses } } }, async (request, reply) => {
    const p = principalOf(request);
    const pool = await prisma.$transaction(async (tx) => {
      const created = await tx.pool.create({ data: { ...POOL_DEFAULTS, officeDays: [...POOL_DEFAULTS.officeDays], ...request.body } });
      await recordAudit(tx, { entityType: 'pool', entityId: created.id, action: 'create', actor: p.actor, cause: apiCause(request), after: created });
      return created;
    });
    return reply.status(201).send(presentPool(pool));
  });

  app.get('/', { schema: { tags, security: bearer, querystring: pageQuerySchema, response: { 200: pageSchema(poolSchema), ...errorResponses } } }, async (request) => {
    const { limit, cursor } = request.query;
    const rows = await prisma.pool.findMany({ where: afterCreatedAt(decodeCreatedAtCursor(cursor)), orderBy: createdAtOrder, take: limit + 1 });
    return toPage(rows, limit, presentPool, encodeCreatedAtCursor);
  });

  app.get('/:id', { schema: { tags, security: bearer, params: idParamsSchema, response: { 200: poolSchema, ...errorResponses } } }, async (request) => {
    const pool = await prisma.pool.findUnique({ where: { id: request.params.id } });
    if (!pool) throw notFound('pool', request.params.id);
    return presentPool(pool);
  });

  app.patch('/:id', { schema: { tags, security: bearer, params: idParamsSchema, body: updatePoolSchema, response: { 200: poolSchema, ...errorResponses } } }, async (request) => {
    const p = principalOf(request);
    const { id } = request.params;
    const { version, ...changes } = request.body;
    return presentPool(
      await prisma.$transaction(async (tx) => {
        if (!(await lockRow(tx, 'pools', id))) throw notFound('pool', id);
        const before = await tx.pool.findUniqueOrThrow({ where: { id } });
        if (version !== undefined && version !== before.version) throw versionConflict('pool', id, version, before.version);
        const after = await tx.pool.update({ where: { id }, data: { ...changes, version: { increment: 1 } } });
        await recordAudit(tx, { entityType: 'pool', entityId: id, action: 'update', actor: p.actor, cause: apiCause(request), before, after });
        return after;
      }),
    );
  });

  app.delete('/:id', { schema: { tags, security: bearer, params: idParamsSchema, response: deletedResponses } }, async (request, reply) => {
    const p = principalOf(request);
    const { id } = request.params;
    await prisma.$transaction(async (tx) => {
      if (!(await lockRow(tx, 'pools', id))) throw notFound('pool', id);
      const hosts = await tx.host.count({ where: { poolId: id } });
      const vms = await tx.desktopVm.count({ where: { poolId: id } });
      if (hosts > 0 || vms > 0) {
        throw inUse(`pool ${id} still has ${hosts} host(s) and ${vms} desktop VM(s); move or remove them first`, { hosts, vms });
      }
      const before = await tx.pool.delete({ where: { id } });
      await recordAudit(tx, { entityType: 'pool', entityId: id, action: 'delete', actor: p.actor, cause: apiCause(request), before });
    });
    return reply.status(204).send(null);
  });
};
