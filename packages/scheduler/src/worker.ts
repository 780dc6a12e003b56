#!/usr/bin/env node
// The scheduler worker process: consumes events and timers from BullMQ, plans, commits to
// PostgreSQL, sends commands to agents. Run as many as you like; they coordinate through
// PostgreSQL (per-pool locks, idempotency keys) and BullMQ (job leases).
import { createPrisma } from '@deskpool/db';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { z } from 'zod';
import { DEFAULT_SETTINGS } from './core/settings.js';
import { DEFAULT_AGENT_CHANNEL_PREFIX } from './runtime/dispatch.js';
import { DEFAULT_QUEUE_PREFIX } from './runtime/queues.js';
import { createSchedulerRuntime } from './runtime/runtime.js';
import { ALL_TIMERS, DEFAULT_TIMER_SETTINGS, type RuntimeTimer } from './runtime/timers.js';

const positiveMs = z.coerce.number().int().positive();

/** Interval env names: DESKPOOL_TIMER_IDLE_CHECK_MS, DESKPOOL_TIMER_HEARTBEAT_CHECK_MS, … */
export const timerEnvName = (timer: RuntimeTimer): string => `DESKPOOL_TIMER_${timer.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}_MS`;

const timerEnv = Object.fromEntries(ALL_TIMERS.map((t) => [timerEnvName(t), positiveMs.default(DEFAULT_TIMER_SETTINGS.intervalsMs[t])]));

export const workerEnvSchema = z.object({
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgresql:// URL'),
  REDIS_URL: z.string().regex(/^rediss?:\/\//, 'must be a redis:// URL'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  // Each event in progress holds one database connection for its transaction (pool of 10).
  DESKPOOL_WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(8, 'at most 8: each event in progress holds one of the 10 database connections').default(4),
  DESKPOOL_QUEUE_PREFIX: z.string().min(1).max(64).regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and -').default(DEFAULT_QUEUE_PREFIX),
  DESKPOOL_AGENT_CHANNEL_PREFIX: z.string().min(1).max(128).default(DEFAULT_AGENT_CHANNEL_PREFIX),
  /**
   * Read agent events from the gateway's Redis stream (e.g. `deskpool:agentgw:events`) when the
   * gateway is not given a SchedulerEvents publisher. Off by default: deskpool-api publishes
   * directly; both at once is harmless (same event ids) but doubles the work.
   */
  DESKPOOL_AGENT_EVENT_STREAM: z.string().min(1).max(256).default('off'),
  /** "false" lets a process consume without (re)registering the repeatable timers. */
  DESKPOOL_SCHEDULE_TIMERS: z.enum(['true', 'false']).default('true'),
  DESKPOOL_HEARTBEAT_TIMEOUT_MS: positiveMs.default(DEFAULT_TIMER_SETTINGS.heartbeatTimeoutMs),
  DESKPOOL_REDISPATCH_AFTER_MS: positiveMs.default(DEFAULT_TIMER_SETTINGS.redispatchAfterMs),
  /**
   * TEST ONLY, the deliberately broken build the chaos harness must catch: "1" makes a host
   * that goes silent count as fenced at once (its tasks requeued, its LOST desktops STOPPED).
   * Refused unless NODE_ENV=test, so no production configuration can turn fencing off.
   */
  DESKPOOL_UNSAFE_DISABLE_FENCING: z.enum(['0', '1']).default('0'),
  NODE_ENV: z.string().optional(),
  ...timerEnv,
}).refine((env) => env.DESKPOOL_UNSAFE_DISABLE_FENCING === '0' || env.NODE_ENV === 'test', {
  path: ['DESKPOOL_UNSAFE_DISABLE_FENCING'],
  message: 'disables fencing and is honoured only with NODE_ENV=test (the chaos harness); unset it',
});
export type WorkerEnv = z.infer<typeof workerEnvSchema>;

/** Every problem at once, by variable name, so one restart fixes them all. */
export function parseWorkerEnv(env: NodeJS.ProcessEnv): { ok: true; env: WorkerEnv } | { ok: false; problems: string[] } {
  const parsed = workerEnvSchema.safeParse(env);
  if (parsed.success) return { ok: true, env: parsed.data };
  return { ok: false, problems: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) };
}

async function main(): Promise<void> {
  const parsed = parseWorkerEnv(process.env);
  if (!parsed.ok) {
    process.stderr.write(`deskpool worker: invalid environment:\n${parsed.problems.map((p) => `  - ${p}`).join('\n')}\n`);
    process.exit(2);
  }
  const env = parsed.env;
  const log = pino({ level: env.LOG_LEVEL, base: { service: 'deskpool-worker' } });
  const prisma = createPrisma(env.DATABASE_URL);
  const redis = new Redis(env.REDIS_URL, { maxRetriesPerRequest: null });
  redis.on('error', (err) => log.warn({ err: err.message }, 'redis connection problem; retrying'));
  const bridgeRedis = env.DESKPOOL_AGENT_EVENT_STREAM === 'off' ? undefined : new Redis(env.REDIS_URL, { maxRetriesPerRequest: null });
  bridgeRedis?.on('error', (err) => log.warn({ err: err.message }, 'redis connection problem (agent events); retrying'));
  const intervalsMs = Object.fromEntries(ALL_TIMERS.map((t) => [t, (env as Record<string, unknown>)[timerEnvName(t)] as number])) as Record<RuntimeTimer, number>;

  const runtime = createSchedulerRuntime({
    prisma,
    redis,
    // Options, not an instance: BullMQ then owns (and closes) its own connections.
    connection: { url: env.REDIS_URL, maxRetriesPerRequest: null },
    queuePrefix: env.DESKPOOL_QUEUE_PREFIX,
    channelPrefix: env.DESKPOOL_AGENT_CHANNEL_PREFIX,
    concurrency: env.DESKPOOL_WORKER_CONCURRENCY,
    scheduleTimers: env.DESKPOOL_SCHEDULE_TIMERS === 'true',
    timers: { intervalsMs, heartbeatTimeoutMs: env.DESKPOOL_HEARTBEAT_TIMEOUT_MS, redispatchAfterMs: env.DESKPOOL_REDISPATCH_AFTER_MS },
    ...(env.DESKPOOL_UNSAFE_DISABLE_FENCING === '1' ? { settings: { ...DEFAULT_SETTINGS, testOnlyTreatLostHostsAsFenced: true } } : {}),
    logger: log,
    ...(bridgeRedis ? { agentBridge: { redis: bridgeRedis, stream: env.DESKPOOL_AGENT_EVENT_STREAM } } : {}),
  });
  log.info({ concurrency: env.DESKPOOL_WORKER_CONCURRENCY, queuePrefix: env.DESKPOOL_QUEUE_PREFIX }, 'scheduler worker started');
  if (env.DESKPOOL_UNSAFE_DISABLE_FENCING === '1') log.warn('FENCING DISABLED (DESKPOOL_UNSAFE_DISABLE_FENCING=1, test only): lost hosts count as fenced at once');

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping: finishing the events in progress');
    // Jobs in progress finish (their commit and dispatch complete); nothing new is taken.
    runtime
      .close()
      .then(async () => {
        redis.disconnect();
        bridgeRedis?.disconnect();
        await prisma.$disconnect();
        log.info('stopped');
        process.exit(0);
      })
      .catch((err: unknown) => {
        log.error({ err }, 'unclean stop; unfinished jobs are taken over by another worker');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

// Started as a program (not imported by a test).
if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`deskpool worker: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  });
}
