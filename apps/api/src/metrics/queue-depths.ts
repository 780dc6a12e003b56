import { DEFAULT_QUEUE_PREFIX, QUEUE_NAMES } from '@deskpool/scheduler';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

/** BullMQ job states reported per queue. */
export const QUEUE_JOB_STATES = ['waiting', 'prioritized', 'active', 'delayed', 'failed'] as const;

export type QueueDepths = { queue: string; state: (typeof QUEUE_JOB_STATES)[number]; count: number }[];

/** Depths of the scheduler's queues (events, timers, dead letters), read from Redis. */
export class QueueDepthReader {
  private queues: Queue[] | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string = DEFAULT_QUEUE_PREFIX,
  ) {}

  async read(): Promise<QueueDepths> {
    // Made at the first scrape: an app that is never scraped opens nothing.
    this.queues ??= Object.values(QUEUE_NAMES).map((name) => {
      // Queue (not Worker) only issues plain commands, so it shares the app's connection.
      const queue = new Queue(name, { connection: this.redis, prefix: this.prefix });
      queue.on('error', () => undefined); // a Redis outage fails the scrape; /healthz reports it
      return queue;
    });
    const out: QueueDepths = [];
    for (const queue of this.queues) {
      const counts = await queue.getJobCounts(...QUEUE_JOB_STATES);
      for (const state of QUEUE_JOB_STATES) out.push({ queue: queue.name, state, count: counts[state] ?? 0 });
    }
    return out;
  }

  async close(): Promise<void> {
    const queues = this.queues ?? [];
    this.queues = undefined;
    await Promise.all(queues.map((q) => q.close()));
  }
}
