import type { PrismaClient } from '@deskpool/db';
import type { Redis } from 'ioredis';
import { collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { AgentEventSink } from '../agent/frames.js';
import { systemClock, type Clock } from '../clock.js';
import { AgentObserver } from './agent-observer.js';
import { CachedValue, readFleetCounts, type FleetCounts } from './fleet-counts.js';
import { QueueDepthReader, type QueueDepths } from './queue-depths.js';

const HOST_STATES = ['online', 'offline', 'asleep'] as const;
const PRESENCE_STATES = ['present', 'idle', 'unknown'] as const;
const VM_STATES = ['RUNNING', 'SUSPENDING', 'SUSPENDED', 'RESTORING', 'MIGRATING', 'STOPPED', 'LOST'] as const;
const TASK_STATES = ['queued', 'placed', 'running', 'checkpointing', 'checkpointed', 'stopping', 'succeeded', 'failed', 'cancelled', 'deadline_missed'] as const;
const JOB_STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'deadline_missed'] as const;

/** A scrape with PostgreSQL or Redis down still answers, without that source's series. */
async function orNull<T>(promise: Promise<T>): Promise<T | null> {
  try {
    return await promise;
  } catch {
    return null;
  }
}

/** Seconds: a hot-plug takes well under a second, a save of a large desktop minutes. */
export const OPERATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
/** Seconds: the first bucket holds the instant mornings (desktop already running at the tap). */
export const TAP_BUCKETS = [0.001, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600];

export interface MetricsOptions {
  prisma: PrismaClient;
  redis: Redis;
  clock?: Clock;
  /** Key prefix of the scheduler's BullMQ queues (default `deskpool`). */
  queuePrefix?: string;
  /** How long fleet counts and queue depths computed at a scrape are reused. */
  cacheMs?: number;
  /** Node.js process metrics (memory, event loop, GC). Default on. */
  processMetrics?: boolean;
}

/**
 * Everything GET /metrics reports. Fleet series (hosts, VMs, tasks, jobs, queue depths) come
 * from PostgreSQL and Redis at scrape time and are the same on every API process; the
 * histograms and agent connections are this process's own (sum them across processes).
 */
export class DeskpoolMetrics {
  readonly registry = new Registry();
  readonly operationDuration: Histogram<'kind' | 'outcome'>;
  readonly tapToDesktop: Histogram;
  readonly observer: AgentObserver;
  private readonly fleet: CachedValue<FleetCounts>;
  private readonly queues: CachedValue<QueueDepths>;
  private readonly queueReader: QueueDepthReader;
  private connectedAgents: () => number = () => 0;

  constructor(options: MetricsOptions) {
    const cacheMs = options.cacheMs ?? 5000;
    this.fleet = new CachedValue(() => readFleetCounts(options.prisma), cacheMs);
    this.queueReader = new QueueDepthReader(options.redis, options.queuePrefix);
    this.queues = new CachedValue(() => this.queueReader.read(), cacheMs);
    const registers = [this.registry];
    const fleet = this.fleet;
    const queues = this.queues;

    new Gauge({
      name: 'deskpool_hosts',
      help: 'PCs by connection state (asleep: put to sleep by power management, counted apart from offline)',
      labelNames: ['state'],
      registers,
      async collect() {
        this.reset();
        const counts = await orNull(fleet.get());
        if (!counts) return;
        for (const s of HOST_STATES) this.set({ state: s }, 0);
        for (const h of counts.hosts) this.inc({ state: h.asleep ? 'asleep' : h.onlineState }, h.count);
      },
    });
    new Gauge({
      name: 'deskpool_hosts_presence',
      help: "PCs by their owner's presence as the agent last reported it",
      labelNames: ['presence'],
      registers,
      async collect() {
        this.reset();
        const counts = await orNull(fleet.get());
        if (!counts) return;
        for (const p of PRESENCE_STATES) this.set({ presence: p }, 0);
        for (const h of counts.hosts) this.inc({ presence: h.presence }, h.count);
      },
    });
    const byState = (name: string, help: string, states: readonly string[], pick: (c: FleetCounts) => Map<string, number>) =>
      new Gauge({
        name,
        help,
        labelNames: ['state'],
        registers,
        async collect() {
          this.reset();
          const all = await orNull(fleet.get());
          if (!all) return;
          const counts = pick(all);
          for (const s of new Set([...states, ...counts.keys()])) this.set({ state: s }, counts.get(s) ?? 0);
        },
      });
    byState('deskpool_vms', 'Desktop VMs by state', VM_STATES, (c) => c.vms);
    byState('deskpool_batch_tasks', 'Batch tasks by state', TASK_STATES, (c) => c.tasks);
    byState('deskpool_batch_jobs', 'Batch jobs by state', JOB_STATES, (c) => c.jobs);
    new Gauge({
      name: 'deskpool_queue_jobs',
      help: "Jobs in the scheduler's BullMQ queues (events, timers, events-dead-letter) by job state",
      labelNames: ['queue', 'state'],
      registers,
      async collect() {
        this.reset();
        const depths = await orNull(queues.get());
        if (!depths) return;
        for (const d of depths) this.set({ queue: d.queue, state: d.state }, d.count);
      },
    });
    new Gauge({
      name: 'deskpool_metrics_source_up',
      help: 'Whether this scrape could read its source (postgres: fleet counts, redis: queue depths); series of a source that is down are left out',
      labelNames: ['source'],
      registers,
      async collect() {
        const [pg, rd] = await Promise.all([orNull(fleet.get()), orNull(queues.get())]);
        this.set({ source: 'postgres' }, pg ? 1 : 0);
        this.set({ source: 'redis' }, rd ? 1 : 0);
      },
    });
    const agents = () => this.connectedAgents();
    new Gauge({
      name: 'deskpool_agent_connections',
      help: 'Agent WebSocket connections held by this API process',
      registers,
      collect() {
        this.set(agents());
      },
    });
    this.operationDuration = new Histogram({
      name: 'deskpool_operation_duration_seconds',
      help: 'Agent commands from delivery to the agent until its result reached this API process, by command kind and outcome',
      labelNames: ['kind', 'outcome'],
      buckets: OPERATION_BUCKETS,
      registers,
    });
    this.tapToDesktop = new Histogram({
      name: 'deskpool_tap_to_desktop_seconds',
      help: 'From a tap that made a person present at a PC until a desktop ran there (0: it already did), as seen by this API process',
      buckets: TAP_BUCKETS,
      registers,
    });
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'deskpool_api_' });
    this.observer = new AgentObserver({
      prisma: options.prisma,
      clock: options.clock ?? systemClock,
      operationDuration: this.operationDuration,
      tapToDesktop: this.tapToDesktop,
    });
  }

  /** The agent gateway's event sink, observed on the way to `inner` (the scheduler's events). */
  observeAgentEvents(inner?: AgentEventSink): AgentEventSink {
    return this.observer.wrap(inner);
  }

  /** Where to read the number of agents connected to this process (the gateway's registry). */
  countConnectedAgentsWith(count: () => number): void {
    this.connectedAgents = count;
  }

  /** The Prometheus text exposition. */
  scrape(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  async close(): Promise<void> {
    await this.queueReader.close();
  }
}
