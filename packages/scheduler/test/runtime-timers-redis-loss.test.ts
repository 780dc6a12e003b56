// A Redis that restarts without its data forgets the repeatable timers; a worker that registers
// timers notices and puts them back, so idle checks and placement do not stop for good.
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUE_NAMES } from '../src/runtime/queues.js';
import { createSchedulerRuntime, type SchedulerRuntime } from '../src/runtime/runtime.js';
import { ALL_TIMERS } from '../src/runtime/timers.js';
import { eventually, ManualClock, NIGHT, REDIS_URL, startServices, type TestServices } from './runtime-fixtures.js';

let s: TestServices;
let runtime: SchedulerRuntime | undefined;
let timers: Queue | undefined;

beforeAll(async () => {
  s = await startServices();
});
afterAll(async () => {
  await runtime?.close();
  await timers?.close();
  await s?.close();
});

describe('timers after Redis lost its data', () => {
  it('are registered again by the worker that schedules them', async () => {
    const connection = { url: REDIS_URL, maxRetriesPerRequest: null };
    runtime = createSchedulerRuntime({
      prisma: s.prisma, redis: s.redis, connection, queuePrefix: s.queuePrefix, channelPrefix: s.channelPrefix,
      clock: new ManualClock(NIGHT), concurrency: 1, scheduleTimers: true, timerWatchMs: 200,
    });
    timers = new Queue(QUEUE_NAMES.timers, { connection, prefix: s.queuePrefix });
    const q = timers;
    const registered = async (): Promise<string[]> => {
      const found: string[] = [];
      for (const t of ALL_TIMERS) if (await q.getJobScheduler(t)) found.push(t);
      return found;
    };
    await eventually(async () => (await registered()).length === ALL_TIMERS.length, 'every timer to be registered');

    // What an empty restart looks like to BullMQ: every key of the timers queue gone.
    const keys = await s.redis.keys(`${s.queuePrefix}:${QUEUE_NAMES.timers}:*`);
    expect(keys.length).toBeGreaterThan(0);
    // Every key went at once (asking timer by timer afterwards races the 200 ms watcher, which
    // may already have put some back).
    expect(await s.redis.del(...keys)).toBe(keys.length);

    expect(await eventually(async () => ((await registered()).length === ALL_TIMERS.length ? registered() : undefined), 'the timers to come back')).toEqual([...ALL_TIMERS]);
  });
});
