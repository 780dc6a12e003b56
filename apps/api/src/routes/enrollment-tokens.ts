import { recordAudit } from '@deskpool/db';
import { createdEnrollmentTokenSchema, createEnrollmentTokenSchema, enrollmentTokenSchema, idParamsSchema, pageQuerySchema, pageSchema } from '@deskpool/protocol';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { allow, apiCause, principalOf } from '../auth.js';
import { invalidField, notFound } from '../errors.js';
import { lockRow } from '../locks.js';
import { afterCreatedAt, createdAtOrder, decodeCreatedAtCursor, encodeCreatedAtCursor, toPage } from '../pagination.js';
import { presentEnrollmentToken } from '../presenters.js';
import { bearer, deletedResponses, errorResponses, type RouteDeps } from '../route-deps.js';
import { generateSecret, hashSecret, SECRET_PREFIX } from '../secrets.js';

export const enrollmentTokenRoutes: FastifyPluginAsyncZod<RouteDeps> = async (app, { prisma, clock }) => {
  app.addHook('onRequest', allow('admin'));
  const tags = ['enrollment'];

  app.post('/', { schema: { tags, security: bearer, body: createEnrollmentTokenSchema, response: { 201: createdEnrollmentTokenSchema, ...errorResponses } } }, async (request, reply) => {
    const p = principalOf(request);
    const { poolId, ttlSeconds, note } = request.body;
    const secret = generateSecret(SECRET_PREFIX.enrollmentToken);
    const token = await prisma.$transaction(async (tx) => {
      if (!(await tx.pool.findUnique({ where: { id: poolId }, select: { id: true } }))) throw invalidField('body', ['poolId'], `no pool ${poolId}`);
      const created = await tx.enrollmentToken.create({
        data: { tokenHash: hashSecret(secret), poolId, note: note ?? '', createdBy: p.actor, expiresAt: new Date(clock.now().getTime() + ttlSeconds * 1000) },
      });
      await recordAudit(tx, { entityType: 'enrollment_token', entityId: created.id, action: 'create', actor: p.actor, cause: apiCause(request), after: presentEnrollmentToken(created) });
      return created;
    });
    return reply.status(201).send({ ...presentEnrollmentToken(token), token: secret });
  });

  app.get('/', { schema: { tags, security: bearer, querystring: pageQuerySchema.extend({ poolId: z.uuid().optional() }), response: { 200: pageSchema(enrollmentTokenSchema), ...errorResponses } } }, async (request) => {
    const { limit, cursor, poolId } = request.query;
    const rows = await prisma.enrollmentToken.findMany({
      where: { ...afterCreatedAt(decodeCreatedAtCursor(cursor)), ...(poolId !== undefined && { poolId }) },
      orderBy: createdAtOrder,
      take: limit + 1,
    });
    return toPage(rows, limit, presentEnrollmentToken, encodeCreatedAtCursor);
  });

  app.delete('/:id', { schema: { tags, security: bearer, params: idParamsSchema, response: deletedResponses } }, async (request, reply) => {
    const p = principalOf(request);
    const { id } = request.params;
    await prisma.$transaction(async (tx) => {
      if (!(await lockRow(tx, 'enrollment_tokens', id))) throw notFound('enrollment token', id);
      const before = await tx.enrollmentToken.findUniqueOrThrow({ where: { id } });
      if (before.revokedAt !== null) return; // revoking twice changes nothing
      const after = await tx.enrollmentToken.update({ where: { id }, data: { revokedAt: clock.now() } });
      await recordAudit(tx, {
        entityType: 'enrollment_token', entityId: id, action: 'revoke', actor: p.actor, cause: apiCause(request),
        before: presentEnrollmentToken(before), after: presentEnrollmentToken(after),
      });
    });
    return reply.status(204).send(null);
  });
};
