#!/usr/bin/env node
// The control plane process: validate env, migrate, make sure an admin can log in, serve.
import { readFile } from 'node:fs/promises';
import { applyMigrations, createPrisma } from '@deskpool/db';
import { SchedulerEvents } from '@deskpool/scheduler';
import { Redis } from 'ioredis';
import { createAgentGateway } from './agent/index.js';
import { buildApp } from './app.js';
import { TaskOutputStore } from './task-output/index.js';
import { DeskpoolMetrics } from './metrics/index.js';
import { ensureBootstrapAdminToken } from './bootstrap.js';
import { ConfigError, parseEnv } from './config.js';

async function main(): Promise<void> {
  const env = parseEnv(process.env);
  await applyMigrations(env.DATABASE_URL);
  const prisma = createPrisma(env.DATABASE_URL);
  const redis = new Redis(env.REDIS_URL, { maxRetriesPerRequest: 2 });
  redis.on('error', () => {
    // ioredis reconnects by itself; /healthz reports the outage.
  });
  if (env.DESKPOOL_BOOTSTRAP_ADMIN_TOKEN !== undefined) await ensureBootstrapAdminToken(prisma, env.DESKPOOL_BOOTSTRAP_ADMIN_TOKEN);
  const https =
    env.TLS_CERT_FILE !== undefined && env.TLS_KEY_FILE !== undefined
      ? { cert: await readFile(env.TLS_CERT_FILE), key: await readFile(env.TLS_KEY_FILE) }
      : null;
  // Agent events (presence, sign-ins, op results) and REST changes (jobs, pins) feed the
  // scheduler's event queue.
  const scheduler = new SchedulerEvents({ connection: redis });
  // GET /metrics observes the agent events on their way to the scheduler.
  const metrics = new DeskpoolMetrics({ prisma, redis });
  // Batch guests' console output and results are stored for job logs and results (docs/jobs.md).
  const gateway = createAgentGateway({ prisma, redis, events: metrics.observeAgentEvents(scheduler), taskOutput: new TaskOutputStore(prisma) });
  metrics.countConnectedAgentsWith(() => gateway.registry.size);
  const app = await buildApp(
    {
      logLevel: env.LOG_LEVEL,
      trustProxy: env.TRUST_PROXY,
      https,
      rateLimits: {
        windowMs: env.RATE_LIMIT_WINDOW_SECONDS * 1000,
        enrollMax: env.RATE_LIMIT_ENROLL_MAX,
        agentConnectMax: env.RATE_LIMIT_AGENT_CONNECT_MAX,
        failedAuthMax: env.RATE_LIMIT_FAILED_AUTH_MAX,
        ...(env.RATE_LIMIT_STORE === 'redis' ? { redis } : {}),
      },
    },
    { prisma, redis, agentRoutes: gateway.plugin, scheduler, metrics, dashboard: { sampler: {} } },
  );

  const shutdown = async (signal: string) => {
    app.log.info({ signal }, 'shutting down');
    await app.close();
    await gateway.close();
    await scheduler.close();
    await metrics.close();
    await prisma.$disconnect();
    redis.disconnect();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));

  await app.listen({ port: env.PORT, host: env.HOST });
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) console.error(`deskpool-api: ${err.message}`);
  else console.error('deskpool-api: failed to start:', err instanceof Error ? err.message : err);
  process.exit(1);
});
