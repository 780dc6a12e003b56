import { loadMigrations, type PrismaClient } from '@deskpool/db';
import { errorBodySchema } from '@deskpool/protocol';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Redis } from 'ioredis';
import { z } from 'zod';

export interface HealthDeps {
  prisma: PrismaClient;
  redis: Redis;
  migrationsDir?: string;
  /** How long one dependency may take before it counts as down. */
  checkTimeoutMs?: number;
}

const checksSchema = z.record(z.string(), z.string());
const healthySchema = z.object({ status: z.literal('ok'), checks: checksSchema });

/** Resolves to "ok" or a short reason; never rejects, never outlives its timeout. */
async function check(name: string, probe: () => Promise<unknown>, timeoutMs: number): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`no answer within ${timeoutMs} ms`), timeoutMs);
  });
  const attempt = probe().then(
    () => 'ok',
    (err: unknown) => `${name} failed: ${err instanceof Error ? err.message : String(err)}`,
  );
  try {
    return await Promise.race([attempt, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export const healthRoutes: FastifyPluginAsyncZod<HealthDeps> = async (app, { prisma, redis, migrationsDir, checkTimeoutMs = 2000 }) => {
  const tags = ['health'];

  app.get('/healthz', { schema: { tags, response: { 200: healthySchema, 503: errorBodySchema } } }, async (_request, reply) => {
    const [postgres, redisState] = await Promise.all([
      check('postgres', () => prisma.$queryRaw`SELECT 1`, checkTimeoutMs),
      check('redis', () => redis.ping(), checkTimeoutMs),
    ]);
    const checks = { postgres, redis: redisState };
    const failed = Object.entries(checks).filter(([, v]) => v !== 'ok').map(([k]) => k);
    if (failed.length > 0) {
      return reply.status(503).send({ error: { code: 'SERVICE_UNAVAILABLE', message: `unavailable: ${failed.join(', ')}`, details: { checks } } });
    }
    return { status: 'ok' as const, checks };
  });

  app.get('/readyz', { schema: { tags, response: { 200: healthySchema, 503: errorBodySchema } } }, async (_request, reply) => {
    const expected = (await loadMigrations(migrationsDir)).map((m) => m.name);
    const state = await check(
      'migrations',
      async () => {
        const rows = await prisma.$queryRaw<{ name: string }[]>`SELECT name FROM "_deskpool_migrations"`;
        const applied = new Set(rows.map((r) => r.name));
        const pending = expected.filter((n) => !applied.has(n));
        if (pending.length > 0) throw new Error(`pending: ${pending.join(', ')}`);
      },
      checkTimeoutMs,
    );
    if (state !== 'ok') {
      return reply.status(503).send({ error: { code: 'SERVICE_UNAVAILABLE', message: 'not ready: migrations are not all applied', details: { checks: { migrations: state } } } });
    }
    return { status: 'ok' as const, checks: { migrations: state } };
  });
};
