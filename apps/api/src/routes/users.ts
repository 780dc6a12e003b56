import { recordAudit } from '@deskpool/db';
import { createUserSchema, idParamsSchema, pageQuerySchema, pageSchema, updateUserSchema, userSchema } from '@deskpool/protocol';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { allow, apiCause, principalOf } from '../auth.js';
import { inUse, invalidField, notFound, versionConflict } from '../errors.js';
import { lockRow } from '../locks.js';
import { afterCreatedAt, createdAtOrder, decodeCreatedAtCursor, encodeCreatedAtCursor, toPage } from '../pagination.js';
import { presentUser } from '../presenters.js';
import { bearer, deletedResponses, errorResponses, type RouteDeps } from '../route-deps.js';
import type { Prisma } from '@deskpool/db';

async function checkReferences(tx: Prisma.TransactionClient, body: { poolId?: string | null | undefined; homeHostId?: string | null | undefined }) {
  if (body.poolId != null && !(await tx.pool.findUnique({ where: { id: body.poolId }, select: { id: true } }))) {
    throw invalidField('body', ['poolId'], `no pool ${body.poolId}`);
  }
  if (body.homeHostId != null && !(await tx.host.findUnique({ where: { id: body.homeHostId }, select: { id: true } }))) {
    throw invalidField('body', ['homeHostId'], `no host ${body.homeHostId}`);
  }
}

export const userRoutes: FastifyPluginAsyncZod<RouteDeps> = async (app, { prisma }) => {
  app.addHook('onRequest', allow('admin'));
  const tags = ['users'];

  app.post('/', { schema: { tags, security: bearer, body: createUserSchema, response: { 201: userSchema, ...errorResponses } } }, async (request, reply) => {
    const p = principalOf(request);
    const user = await prisma.$transaction(async (tx) => {
      await checkReferences(tx, request.body);
      const { name, displayName, role, poolId, homeHostId } = request.body;
      const created = await tx.user.create({ data: { name, displayName: displayName ?? '', role, poolId: poolId ?? null, homeHostId: homeHostId ?? null } });
      await recordAudit(tx, { entityType: 'user', entityId: created.id, action: 'create', actor: p.actor, cause: apiCause(request), after: created });
      return created;
    });
    return reply.status(201).send(presentUser(user));
  });

  app.get('/', { schema: { tags, security: bearer, querystring: pageQuerySchema, response: { 200: pageSchema(userSchema), ...errorResponses } } }, async (request) => {
    const { limit, cursor } = request.query;
    const rows = await prisma.user.findMany({ where: afterCreatedAt(decodeCreatedAtCursor(cursor)), orderBy: createdAtOrder, take: limit + 1 });
    return toPage(rows, limit, presentUser, encodeCreatedAtCursor);
  });

  app.get('/:id', { schema: { tags, security: bearer, params: idParamsSchema, response: { 200: userSchema, ...errorResponses } } }, async (request) => {
    const user = await prisma.user.findUnique({ where: { id: request.params.id } });
    if (!user) throw notFound('user', request.params.id);
    return presentUser(user);
  });

  app.patch('/:id', { schema: { tags, security: bearer, params: idParamsSchema, body: updateUserSchema, response: { 200: userSchema, ...errorResponses } } }, async (request) => {
    const p = principalOf(request);
    const { id } = request.params;
    const { version, ...changes } = request.body;
    return presentUser(
      await prisma.$transaction(async (tx) => {
        if (!(await lockRow(tx, 'users', id))) throw notFound('user', id);
        const before = await tx.user.findUniqueOrThrow({ where: { id } });
        if (version !== undefined && version !== before.version) throw versionConflict('user', id, version, before.version);
        await checkReferences(tx, changes);
        const after = await tx.user.update({ where: { id }, data: { ...changes, version: { increment: 1 } } });
        await recordAudit(tx, { entityType: 'user', entityId: id, action: 'update', actor: p.actor, cause: apiCause(request), before, after });
        return after;
      }),
    );
  });

  app.delete('/:id', { schema: { tags, security: bearer, params: idParamsSchema, response: deletedResponses } }, async (request, reply) => {
    const p = principalOf(request);
    const { id } = request.params;
    await prisma.$transaction(async (tx) => {
      if (!(await lockRow(tx, 'users', id))) throw notFound('user', id);
      const vms = await tx.desktopVm.count({ where: { ownerUserId: id } });
      if (vms > 0) throw inUse(`user ${id} still owns ${vms} desktop VM(s); delete or reassign them first`, { vms });
      // The user's API tokens go with them (ON DELETE CASCADE); their submitted jobs keep `submittedBy`.
      const before = await tx.user.delete({ where: { id } });
      await recordAudit(tx, { entityType: 'user', entityId: id, action: 'delete', actor: p.actor, cause: apiCause(request), before });
    });
    return reply.status(204).send(null);
  });
};
