import type { PrismaClient } from '@deskpool/db';
import { randomUUID } from 'node:crypto';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyInstance, type FastifyPluginAsync, type RouteOptions } from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { Redis } from 'ioredis';
import { authenticate } from './auth.js';
import { systemClock, type Clock } from './clock.js';
import { frameworkErrors, installErrorHandlers } from './error-handler.js';
import { dashboardApiRoutes, dashboardPageRoutes, DashboardFeed, DEFAULT_SAMPLER, FleetSampler, type SamplerOptions } from './dashboard/index.js';
import { DeskpoolMetrics, metricsRoutes } from './metrics/index.js';
import type { SchedulerNotifier } from './notifier.js';
import { rejectNulCharacters } from './nul-guard.js';
import { registerRateLimits, type RateLimitSettings } from './rate-limit.js';
import type { RouteDeps } from './route-deps.js';
import { apiTokenRoutes } from './routes/api-tokens.js';
import { auditRoutes } from './routes/audit.js';
import { enrollmentTokenRoutes } from './routes/enrollment-tokens.js';
import { healthRoutes } from './routes/health.js';
import { hostRoutes } from './routes/hosts.js';
import { jobRoutes } from './routes/jobs.js';
import { meRoutes } from './routes/me.js';
import { poolRoutes } from './routes/pools.js';
import { userRoutes } from './routes/users.js';
import { vmRoutes } from './routes/vms.js';

export interface AppConfig {
  /** pino level, or false for no logging (tests). */
  logLevel: string | false;
  /** Largest request body accepted, in bytes. */
  bodyLimitBytes?: number;
  /** Honour X-Forwarded-* from a load balancer in front. */
  trustProxy?: boolean;
  https?: { key: Buffer; cert: Buffer } | null;
  /** Per-dependency timeout of /healthz. */
  healthCheckTimeoutMs?: number;
  /** Limits on enrollment, agent connections and failed authentications; none when absent (main.ts always sets them). */
  rateLimits?: RateLimitSettings;
}

export interface AppDeps {
  prisma: PrismaClient;
  redis: Redis;
  clock?: Clock;
  migrationsDir?: string;
  /** Told about submitted/cancelled jobs and pins after they commit (e.g. the scheduler's SchedulerEvents). */
  scheduler?: SchedulerNotifier;
  /**
   * The agent endpoint (/api/v1/agent/*): it authenticates with enrollment tokens and host
   * credentials, not API tokens, so it is registered outside the API-token scope.
   */
  agentRoutes?: FastifyPluginAsync;
  /** Told about every route as it is added (the fuzz suite enumerates the route table with it). */
  onRoute?: (route: RouteOptions) => void;
  /** GET /metrics; one is made when absent (then without agent observations: see metrics/). */
  metrics?: DeskpoolMetrics;
  /**
   * The admin dashboard (/dashboard). `sampler` turns on writing the timeline's samples (off
   * unless given: main.ts turns it on); `feedPollMs` is how often live dashboards' change feed
   * reads the audit trail.
   */
  dashboard?: { sampler?: Partial<SamplerOptions>; feedPollMs?: number };
}

/** The control plane's HTTP app, not yet listening (tests use `inject`; main.ts listens). */
export async function buildApp(config: AppConfig, deps: AppDeps): Promise<FastifyInstance> {
  const clock = deps.clock ?? systemClock;
  const app = Fastify({
    logger: config.logLevel === false ? false : { level: config.logLevel },
    bodyLimit: config.bodyLimitBytes ?? 1024 * 1024,
    trustProxy: config.trustProxy ?? false,
    // Request ids end up in audit causes; they must be unique across processes and restarts.
    genReqId: () => randomUUID(),
    frameworkErrors,
    ...(config.https ? { https: config.https } : {}),
  }) as unknown as FastifyInstance;

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandlers(app);
  app.decorateRequest('principal', null);
  if (deps.onRoute) app.addHook('onRoute', deps.onRoute);
  if (config.rateLimits) await registerRateLimits(app, config.rateLimits);
  app.addHook('preValidation', rejectNulCharacters);

  await app.register(swagger, {
    openapi: {
      info: { title: 'deskpool control plane', version: '1.0.0', description: 'See docs/api.md for conventions (auth, errors, pagination, concurrency).' },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } } },
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  await app.register(healthRoutes, {
    prisma: deps.prisma,
    redis: deps.redis,
    ...(deps.migrationsDir !== undefined && { migrationsDir: deps.migrationsDir }),
    ...(config.healthCheckTimeoutMs !== undefined && { checkTimeoutMs: config.healthCheckTimeoutMs }),
  });

  const routeDeps: RouteDeps = { prisma: deps.prisma, clock, scheduler: deps.scheduler };
  const feed = new DashboardFeed(deps.prisma, deps.dashboard?.feedPollMs ?? 500, (err) => app.log.warn({ err }, 'dashboard feed: could not read changes'));
  const samplerOptions = deps.dashboard?.sampler;
  const sampler = samplerOptions && new FleetSampler(deps.prisma, clock, { ...DEFAULT_SAMPLER, ...samplerOptions }, (at) => feed.sampled(at), (err) => app.log.warn({ err }, 'dashboard: could not write a fleet sample'));
  app.addHook('onReady', async () => sampler?.start());
  app.addHook('onClose', async () => {
    await sampler?.stop();
    await feed.close();
  });
  await app.register(dashboardPageRoutes);
  await app.register(
    async (api) => {
      api.addHook('onRequest', authenticate(deps.prisma, clock));
      await api.register(poolRoutes, { ...routeDeps, prefix: '/pools' });
      await api.register(hostRoutes, { ...routeDeps, prefix: '/hosts' });
      await api.register(enrollmentTokenRoutes, { ...routeDeps, prefix: '/enrollment-tokens' });
      await api.register(userRoutes, { ...routeDeps, prefix: '/users' });
      await api.register(meRoutes, { prefix: '/me' });
      await api.register(apiTokenRoutes, { ...routeDeps, prefix: '/api-tokens' });
      await api.register(vmRoutes, { ...routeDeps, prefix: '/vms' });
      await api.register(jobRoutes, { ...routeDeps, prefix: '/jobs' });
      await api.register(auditRoutes, { ...routeDeps, prefix: '/audit' });
      await api.register(dashboardApiRoutes, { prisma: deps.prisma, clock, feed, prefix: '/dashboard' });
    },
    { prefix: '/api/v1' },
  );
  if (deps.agentRoutes) await app.register(deps.agentRoutes, { prefix: '/api/v1/agent' });

  const metrics = deps.metrics ?? new DeskpoolMetrics({ prisma: deps.prisma, redis: deps.redis, clock });
  if (!deps.metrics) app.addHook('onClose', () => metrics.close());
  await app.register(metricsRoutes, { prisma: deps.prisma, clock, metrics });

  return app;
}
