import type { Prisma } from '@deskpool/db';
import { auditEventSchema, listAuditQuerySchema, pageSchema } from '@deskpool/protocol';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { allow } from '../auth.js';
import { decodeSequenceCursor, encodeSequenceCursor, toPage } from '../pagination.js';
import { presentAuditEvent } from '../presenters.js';
import { bearer, errorResponses, type RouteDeps } from '../route-deps.js';

export const auditRoutes: FastifyPluginAsyncZod<RouteDeps> = async (app, { prisma }) => {
  app.addHook('onRequest', allow('admin'));

  app.get('/', { schema: { tags: ['audit'], security: bearer, querystring: listAuditQuerySchema, response: { 200: pageSchema(auditEventSchema), ...errorResponses } } }, async (request) => {
    const { limit, cursor, entityType, entityId, actor, action, since, until } = request.query;
    const before = decodeSequenceCursor(cursor);
    const where: Prisma.AuditEventWhereInput = {
      ...(before !== undefined && { id: { lt: before } }),
      ...(entityType !== undefined && { entityType }),
      ...(entityId !== undefined && { entityId }),
      ...(actor !== undefined && { actor }),
      ...(action !== undefined && { action }),
      ...((since !== undefined || until !== undefined) && {
        at: { ...(since !== undefined && { gte: new Date(since) }), ...(until !== undefined && { lte: new Date(until) }) },
      }),
    };
    const rows = await prisma.auditEvent.findMany({ where, orderBy: { id: 'desc' }, take: limit + 1 });
    return toPage(rows, limit, presentAuditEvent, (e) => encodeSequenceCursor(e.id));
  });
};
