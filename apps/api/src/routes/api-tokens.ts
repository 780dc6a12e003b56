import { recordAudit } from '@deskpool/db';
import { apiTokenSchema, createApiTokenSchema, createdApiTokenSchema, idParamsSchema, pageQuerySchema, pageSchema } from '@deskpool/protocol';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { allow, apiCause, principalOf } from '../auth.js';
import { invalidField, notFound } from '../errors.js';
import { lockRow } from '../locks.js';
import { afterCreatedAt, createdAtOrder, decodeCreatedAtCursor, encodeCreatedAtCursor, toPage } from '../pagination.js';
import { presentApiToken } from '../presenters.js';
import { bearer, deletedResponses, errorResponses, type RouteDeps } from '../route-deps.js';
import { generateSecret, hashSecret, SECRET_PREFIX } from '../secrets.js';

export const apiTokenRoutes: FastifyPluginAsyncZod<RouteDeps> = async (app, { prisma, clock }) => {
  app.addHook('onRequest', allow('admin'));
  const tags = ['api-tokens'];

  app.post('/', { schema: { tags, security: bearer, body: createApiTokenSchema, response: { 201: createdApiTokenSchema, ...errorResponses } } }, async (request, reply) => {
    const p = principalOf(request);
    const { name, role, userId } = request.body;
    const secret = generateSecret(SECRET_PREFIX.apiToken);
    const token = await prisma.$transaction(async (tx) => {
      if (userId !== undefined && !(await tx.user.findUnique({ where: { id: userId }, select: { id: true } }))) {
        throw invalidField('body', ['userId'], `no user ${userId}`);
      }
      const created = await tx.apiToken.create({ data: { name, role, userId: userId ?? null, tokenHash: hashSecret(secret) } });
      await recordAudit(tx, { entityType: 'api_token', entityId: created.id, action: 'create', actor: p.actor, cause: apiCause(request), after: presentApiToken(created) });
      return created;
    });
    return reply.status(201).send({ ...presentApiToken(token), token: secret });
  });

  app.get('/', { schema: { tags, security: bearer, querystring: pageQuerySchema, response: { 200: pageSchema(apiTokenSchema), ...errorResponses } } }, async (request) => {
    const { limit, cursor } = request.query;
    const rows = await prisma.apiToken.findMany({ where: afterCreatedAt(decodeCreatedAtCursor(cursor)), orderBy: createdAtOrder, take: limit + 1 });
    return toPage(rows, limit, presentApiToken, encodeCreatedAtCursor);
  });

  app.delete('/:id', { schema: { tags, security: bearer, params: idParamsSchema, response: deletedResponses } }, async (request, reply) => {
    const p = principalOf(request);
    const { id } = request.params;
    await prisma.$transaction(async (tx) => {
      if (!(await lockRow(tx, 'api_tokens', id))) throw notFound('API token', id);
      const before = await tx.apiToken.findUniqueOrThrow({ where: { id } });
      if (before.revokedAt !== null) return;
      const after = await tx.apiToken.update({ where: { id }, data: { revokedAt: clock.now() } });
      await recordAudit(tx, { entityType: 'api_token', entityId: id, action: 'revoke', actor: p.actor, cause: apiCause(request), before: presentApiToken(before), after: presentApiToken(after) });
    });
    return reply.status(204).send(null);
  });
};
