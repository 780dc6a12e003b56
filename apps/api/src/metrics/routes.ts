import type { PrismaClient } from '@deskpool/db';
import type { FastifyPluginAsync } from 'fastify';
import { allow, authenticate } from '../auth.js';
import type { Clock } from '../clock.js';
import type { DeskpoolMetrics } from './metrics.js';

export interface MetricsRouteDeps {
  prisma: PrismaClient;
  clock: Clock;
  metrics: DeskpoolMetrics;
}

/**
 * GET /metrics: Prometheus text format, for an admin token (Prometheus sends it with
 * `authorization: { credentials: <token> }`): the fleet's shape is not for anonymous eyes.
 */
export const metricsRoutes: FastifyPluginAsync<MetricsRouteDeps> = async (app, { prisma, clock, metrics }) => {
  app.get('/metrics', { schema: { hide: true }, onRequest: [authenticate(prisma, clock), allow('admin')] }, async (_request, reply) => {
    const body = await metrics.scrape();
    return reply.header('content-type', metrics.contentType).header('cache-control', 'no-store').send(body);
  });
};
