import { meSchema } from '@deskpool/protocol';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { principalOf } from '../auth.js';
import { presentUser } from '../presenters.js';
import { bearer, errorResponses } from '../route-deps.js';

export const meRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get('/', { schema: { tags: ['users'], security: bearer, response: { 200: meSchema, ...errorResponses } } }, async (request) => {
    const p = principalOf(request);
    return { tokenId: p.tokenId, tokenName: p.tokenName, role: p.role, actor: p.actor, user: p.user ? presentUser(p.user) : null };
  });
};
