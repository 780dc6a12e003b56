// The worker's moving parts: the events consumer, the timers, the dead-letter path.
import { recordAudit, type PrismaClient } from '@deskpool/db';
import { Queue, UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { PlannerSettings } from '../core/settings.js';
import { AgentEventBridge } from './agent-bridge.js';
import { DEFAULT_AGENT_CHANNEL_PREFIX } from './dispatch.js';
import { SchedulerEngine, silentLogger, systemClock, type Clock, type EngineOptions, type HandleOutcome, type Logger } from './engine.js';
import { InvalidSchedulerEventError, parseRuntimeEvent } from './events.js';
import { DEFAULT_QUEUE_PREFIX, DeadLetters, QUEUE_NAMES, SchedulerEvents } from './queues.js';
import { ALL_TIMERS, DEFAULT_TIMER_SETTINGS, runTimer, type RuntimeTimer, type TimerSettings } from './timers.js';

export interface SchedulerRuntimeOptions {
  prisma: PrismaClient;
  /** For publishing command frames and reading queues. */
  redis: Redis;
  /** BullMQ connection (ioredis options or instance; it needs maxRetriesPerRequest: null). */
  connection: ConnectionOptions;
  queuePrefix?: string;
  channelPrefix?: string;
  clock?: Clock;
  settings?: PlannerSettings;
  /** Events handled at once by this process (different pools run in parallel). */
  concurrency?: number;
  timers?: Partial<TimerSettings>;
  /** Register the repeatable timers (one process doing it is enough; repeats are idempotent). */
  scheduleTimers?: boolean;
  /** With scheduleTimers: how often to check that Redis still holds every timer (default 15 s). */
  timerWatchMs?: number;
  /** BullMQ lock lease: a job whose worker died is taken over after about this long. */
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  logger?: Logger;
  afterCommit?: EngineOptions['afterCommit'];
  /** Forward the agent gateway's event stream into the events queue (a connection of its own). */
  agentBridge?: { redis: Redis; stream?: string };
}

export interface SchedulerRuntime {
  engine: SchedulerEngine;
  events: SchedulerEvents;
  deadLetters: DeadLetters;
  eventsWorker: Worker;
  timersWorker: Worker;
  bridge: AgentEventBridge | undefined;
  /** Runs one timer now (what its repeatable job does). */
  runTimer(timer: RuntimeTimer): Promise<number>;
  /** Stops taking jobs and waits for the ones in progress to finish. */
  close(): Promise<void>;
  /** Stops at once without finishing jobs in progress (they are taken over by another worker). */
  kill(): Promise<void>;
}

export function createSchedulerRuntime(options: SchedulerRuntimeOptions): SchedulerRuntime {
  const prefix = options.queuePrefix ?? DEFAULT_QUEUE_PREFIX;
  const channelPrefix = options.channelPrefix ?? DEFAULT_AGENT_CHANNEL_PREFIX;
  const clock = options.clock ?? systemClock;
  const log = options.logger ?? silentLogger;
  const timerSettings: TimerSettings = {
    ...DEFAULT_TIMER_SETTINGS,
    ...options.timers,
    intervalsMs: { ...DEFAULT_TIMER_SETTINGS.intervalsMs, ...options.timers?.intervalsMs },
  };
  const engine = new SchedulerEngine({
    prisma: options.prisma,
    redis: options.redis,
    clock,
    channelPrefix,
    logger: log,
    ...(options.settings ? { settings: options.settings } : {}),
    ...(options.afterCommit ? { afterCommit: options.afterCommit } : {}),
  });
  const events = new SchedulerEvents({ connection: options.connection, prefix });
  const deadLetters = new DeadLetters({ connection: options.connection, prefix });
  const timerDeps = { prisma: options.prisma, redis: options.redis, events, clock, channelPrefix, settings: timerSettings };
  const leases = {
    ...(options.lockDurationMs !== undefined ? { lockDuration: options.lockDurationMs } : {}),
    ...(options.stalledIntervalMs !== undefined ? { stalledInterval: options.stalledIntervalMs } : {}),
  };

  const eventsWorker = new Worker<unknown, HandleOutcome>(
    QUEUE_NAMES.events,
    async (job: Job) => {
      let event;
      try {
        event = parseRuntimeEvent(job.data);
      } catch (err) {
        // Retrying cannot fix a malformed event: straight to the dead letters.
        if (err instanceof InvalidSchedulerEventError) throw new UnrecoverableError(err.message);
        throw err;
      }
      const outcome = await engine.handle(event);
      log.info({ eventId: event.id, type: event.type, outcome }, 'event handled');
      return outcome;
    },
    { connection: options.connection, prefix, concurrency: options.concurrency ?? 4, ...leases },
  );

  eventsWorker.on('failed', (job, err) => {
    if (!job) return;
    const attempts = job.opts.attempts ?? 1;
    const final = err.name === 'UnrecoverableError' || job.attemptsMade >= attempts;
    log.warn({ jobId: job.id, attemptsMade: job.attemptsMade, final, err: err.message }, 'event failed');
    if (!final) return;
    void deadLetter(job, err).catch((e: unknown) => log.error({ jobId: job.id, err: e }, 'could not record a dead letter'));
  });
  eventsWorker.on('error', (err) => log.error({ err }, 'events worker error'));

  async function deadLetter(job: Job, err: Error): Promise<void> {
    const jobId = job.id ?? `unknown-${clock.now()}`;
    await deadLetters.add({ jobId, event: job.data, failedReason: err.message, attemptsMade: job.attemptsMade, failedAt: clock.now() });
    await recordAudit(options.prisma, {
      entityType: 'scheduler-event',
      entityId: jobId,
      action: 'event.dead-lettered',
      actor: 'scheduler',
      cause: `failed ${job.attemptsMade} time(s): ${err.message}`.slice(0, 2000),
      after: { event: job.data },
    });
  }

  const timersWorker = new Worker(
    QUEUE_NAMES.timers,
    async (job: Job) => {
      const timer = job.name as RuntimeTimer;
      if (!(ALL_TIMERS as readonly string[]).includes(timer)) throw new UnrecoverableError(`unknown timer ${job.name}`);
      return runTimer(timer, timerDeps);
    },
    { connection: options.connection, prefix, concurrency: 1, ...leases },
  );
  timersWorker.on('error', (err) => log.error({ err }, 'timers worker error'));

  let timersQueue: Queue | undefined;
  let timerWatch: NodeJS.Timeout | undefined;
  if (options.scheduleTimers) {
    timersQueue = new Queue(QUEUE_NAMES.timers, { connection: options.connection, prefix });
    const q = timersQueue;
    const register = (t: RuntimeTimer) =>
      q.upsertJobScheduler(t, { every: timerSettings.intervalsMs[t] }, { name: t, data: {}, opts: { removeOnComplete: { count: 100 }, removeOnFail: { count: 1000 } } });
    void Promise.all(ALL_TIMERS.map(register)).catch((err: unknown) => log.error({ err }, 'could not register timers'));
    // Redis restarted without its data (or flushed) forgets the schedulers, and every timer
    // would stop for good: idle checks, placement, heartbeat checks. Each worker looks now and
    // then and puts back whatever is missing (re-registering an existing one could shift it).
    const restore = async (): Promise<void> => {
      for (const t of ALL_TIMERS) {
        if (await q.getJobScheduler(t)) continue;
        log.warn({ timer: t }, 'timer scheduler missing (Redis lost its data?): registering it again');
        await register(t);
      }
    };
    timerWatch = setInterval(() => void restore().catch((err: unknown) => log.warn({ err }, 'could not check the timers')), options.timerWatchMs ?? 15_000);
    timerWatch.unref();
  }

  const bridge = options.agentBridge
    ? new AgentEventBridge({
        prisma: options.prisma,
        redis: options.agentBridge.redis,
        events,
        logger: log,
        ...(options.agentBridge.stream ? { stream: options.agentBridge.stream } : {}),
      })
    : undefined;
  bridge?.start().catch((err: unknown) => log.error({ err }, 'could not start the agent event bridge'));

  return {
    engine,
    events,
    deadLetters,
    eventsWorker,
    timersWorker,
    bridge,
    runTimer: async (timer) => (await runTimer(timer, timerDeps)).count,
    async close() {
      clearInterval(timerWatch);
      await bridge?.stop();
      await Promise.all([eventsWorker.close(), timersWorker.close()]);
      await Promise.all([events.close(), deadLetters.close(), timersQueue?.close()]);
    },
    async kill() {
      clearInterval(timerWatch);
      await bridge?.stop();
      await Promise.all([eventsWorker.close(true), timersWorker.close(true)]);
      await Promise.all([events.close(), deadLetters.close(), timersQueue?.close()]);
    },
  };
}
