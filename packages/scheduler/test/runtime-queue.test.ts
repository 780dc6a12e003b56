// The worker side on real Redis (BullMQ) and PostgreSQL: publishing, racing workers, a worker
// dying between commit and dispatch, dead letters, timers.
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { InvalidSchedulerEventError } from '../src/runtime/events.js';
import { QUEUE_NAMES, SchedulerEvents } from '../src/runtime/queues.js';
import { createSchedulerRuntime, type SchedulerRuntime, type SchedulerRuntimeOptions } from '../src/runtime/runtime.js';
import { createOffice, eventually, listenForCommands, ManualClock, NIGHT, startServices, type TestServices } from './runtime-fixtures.js';

let s: TestServices;
const clock = new ManualClock(NIGHT);
const running: SchedulerRuntime[] = [];
const connections: Redis[] = [];

/** A connection of its own for BullMQ (which does not close connections it was handed). */
function connection(): Redis {
  const c = s.redis.duplicate();
  connections.push(c);
  return c;
}

beforeAll(async () => {
  s = await startServices();
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.close()));
});
afterAll(async () => {
  for (const c of connections) c.disconnect();
  await s?.close();
});

function runtime(extra: Partial<SchedulerRuntimeOptions> = {}): SchedulerRuntime {
  const r = createSchedulerRuntime({
    prisma: s.prisma,
    redis: s.redis,
    connection: connection(),
    queuePrefix: s.queuePrefix,
    channelPrefix: s.channelPrefix,
    clock,
    concurrency: 4,
    // Short leases so a dead worker's job is taken over quickly. Every worker on a queue must use
    // the same stalled-check interval: one check per interval is done, by whichever worker is first.
    lockDurationMs: 2000,
    stalledIntervalMs: 500,
    ...extra,
  });
  running.push(r);
  return r;
}

function publisher(): SchedulerEvents {
  return new SchedulerEvents({ connection: connection(), prefix: s.queuePrefix });
}

async function suspendCount(vmId: string): Promise<number> {
  return s.prisma.operation.count({ where: { vmId, kind: 'suspend' } });
}

describe('publishing events', () => {
  it('queues the same event once and the worker acts on it once', async () => {
    const office = await createOffice(s.prisma, { now: NIGHT });
    const events = publisher();
    try {
      await events.publishTick({ timer: 'idleCheck', poolId: office.poolId, slot: 1 });
      await events.publishTick({ timer: 'idleCheck', poolId: office.poolId, slot: 1 });
      expect(await events.queue.getJobCountByTypes('waiting', 'prioritized', 'active', 'completed', 'delayed')).toBe(1);
      runtime();
      await eventually(async () => (await s.prisma.desktopVm.findUniqueOrThrow({ where: { id: office.vmId } })).state === 'SUSPENDING', 'the suspend');
      expect(await suspendCount(office.vmId)).toBe(1);
    } finally {
      await events.close();
    }
  });

  it('queues taps ahead of timer ticks', async () => {
    const office = await createOffice(s.prisma, { now: NIGHT });
    const events = publisher();
    try {
      await events.publishTick({ timer: 'placement', poolId: office.poolId, slot: 900 });
      await events.publishPresence({ hostId: office.hostId, presence: 'present', at: NIGHT + 1 });
      const [first] = await events.queue.getJobs(['prioritized'], 0, 0, true);
      expect(first?.name).toBe('presence');
    } finally {
      await events.queue.drain();
      await events.close();
    }
  });

  it('refuses a malformed event naming the field, and queues nothing', async () => {
    const events = publisher();
    try {
      const before = await events.queue.count();
      await expect(events.publishPresence({ hostId: '', presence: 'idle', at: NIGHT })).rejects.toThrow(InvalidSchedulerEventError);
      await expect(events.publishPresence({ hostId: '', presence: 'idle', at: NIGHT })).rejects.toThrow(/hostId/);
      expect(await events.queue.count()).toBe(before);
    } finally {
      await events.close();
    }
  });
});

describe('several workers', () => {
  it('two workers racing on the same events never act twice', async () => {
    const offices = await Promise.all([1, 2, 3].map(() => createOffice(s.prisma, { now: NIGHT })));
    const events = publisher();
    try {
      runtime();
      runtime();
      // Each pool gets several distinct ticks at once; both workers take jobs concurrently.
      await Promise.all(offices.flatMap((o) => [1, 2, 3, 4].map((slot) => events.publishTick({ timer: 'idleCheck', poolId: o.poolId, slot: 100 + slot }))));
      await eventually(async () => (await events.queue.getJobCountByTypes('waiting', 'prioritized', 'active', 'delayed')) === 0 && (await events.queue.getCompletedCount()) >= 12, 'all ticks handled');
      for (const o of offices) expect(await suspendCount(o.vmId)).toBe(1);
    } finally {
      await events.close();
    }
  });

  it('a worker killed between commit and dispatch: another takes the job over and the action happens exactly once', async () => {
    const office = await createOffice(s.prisma, { now: NIGHT });
    const listener = await listenForCommands(s, office.hostId);
    const events = publisher();
    let committed = false;
    try {
      // Its own connection, cut when it is killed: a dead process renews no lock.
      const doomedConnection = connection();
      const doomed = runtime({
        connection: doomedConnection,
        // The worker "dies" right after its commit: it never dispatches nor finishes the job.
        afterCommit: () => {
          committed = true;
          return new Promise<void>(() => undefined);
        },
      });
      await events.publishTick({ timer: 'idleCheck', poolId: office.poolId, slot: 200 });
      await eventually(() => committed, 'the first worker to commit');
      running.splice(running.indexOf(doomed), 1);
      doomedConnection.disconnect();
      await doomed.kill();
      expect(listener.frames).toHaveLength(0);

      runtime();
      const frames = await eventually(() => listener.frames.length > 0 && listener.frames, 'the command sent by the second worker');
      await eventually(async () => (await events.queue.getCompletedCount()) >= 1, 'the job to complete');
      expect(await suspendCount(office.vmId)).toBe(1);
      const [op] = await s.prisma.operation.findMany({ where: { vmId: office.vmId } });
      expect(op?.status).toBe('sent');
      expect(frames).toHaveLength(1);
      expect(frames[0]).toMatchObject({ kind: 'suspend', idempotencyKey: op?.idempotencyKey });
      expect(await s.prisma.auditEvent.count({ where: { entityType: 'vm', entityId: office.vmId } })).toBe(1);
    } finally {
      listener.stop();
      await events.close();
    }
  });
});

describe('dead letters', () => {
  it('a malformed job goes straight to the dead letters, recorded in the audit trail', async () => {
    const raw = new Queue(QUEUE_NAMES.events, { connection: connection(), prefix: s.queuePrefix });
    try {
      const r = runtime();
      await raw.add('presence', { type: 'presence', id: 'bad.1', hostId: 'h', presence: 'asleep' }, { jobId: 'bad.1', attempts: 5 });
      const letters = await eventually(async () => {
        const l = await r.deadLetters.list();
        return l.some((d) => d.jobId === 'bad.1') && l;
      }, 'the dead letter');
      expect(letters.find((d) => d.jobId === 'bad.1')).toMatchObject({ attemptsMade: 1, failedReason: expect.stringContaining('presence') });
      const audit = await eventually(() => s.prisma.auditEvent.findFirst({ where: { entityType: 'scheduler-event', entityId: 'bad.1' } }).then((a) => a ?? undefined), 'the audit row');
      expect(audit.action).toBe('event.dead-lettered');
    } finally {
      await raw.close();
    }
  });

  it('an event failing every attempt is retried with backoff, then dead-lettered', async () => {
    const office = await createOffice(s.prisma, { now: NIGHT });
    // A job whose stored spec the scheduler cannot read fails on every attempt.
    const job = await s.prisma.batchJob.create({ data: { name: 'broken', submittedBy: 'user:x', poolId: office.poolId, spec: { cores: 'many' }, taskCount: 1 } });
    const raw = new Queue(QUEUE_NAMES.events, { connection: connection(), prefix: s.queuePrefix });
    try {
      const r = runtime();
      const id = `job.${job.id}`;
      await raw.add('jobSubmitted', { type: 'jobSubmitted', id, jobId: job.id }, { jobId: id, attempts: 3, backoff: { type: 'fixed', delay: 50 } });
      const letter = await eventually(async () => (await r.deadLetters.list()).find((d) => d.jobId === id), 'the dead letter', 30_000);
      expect(letter.attemptsMade).toBe(3);
      expect(letter.failedReason).toContain('cannot be read');
    } finally {
      await raw.close();
    }
  });
});

describe('timers', () => {
  it('the heartbeat check turns a silent host into LOST desktops with a new generation', async () => {
    const office = await createOffice(s.prisma, { now: NIGHT, heartbeatAt: NIGHT - 10 * 60_000, presence: 'present' });
    const r = runtime({ timers: { heartbeatTimeoutMs: 90_000 } });
    expect(await r.runTimer('heartbeatCheck')).toBeGreaterThanOrEqual(1);
    await eventually(async () => (await s.prisma.desktopVm.findUniqueOrThrow({ where: { id: office.vmId } })).state === 'LOST', 'the desktop to be LOST');
    const vm = await s.prisma.desktopVm.findUniqueOrThrow({ where: { id: office.vmId } });
    expect(vm.fencingGeneration).toBe(4);
    expect(await s.prisma.host.findUniqueOrThrow({ where: { id: office.hostId } })).toMatchObject({ needsReconcile: true, onlineState: 'offline' });
    // Checking again finds nothing new to declare: the host is already fenced.
    expect(await r.runTimer('heartbeatCheck')).toBe(0);
    expect((await s.prisma.desktopVm.findUniqueOrThrow({ where: { id: office.vmId } })).fencingGeneration).toBe(4);
  });

  it('a fenced host heard from again is asked to reconcile, once', async () => {
    const office = await createOffice(s.prisma, { now: NIGHT, heartbeatAt: NIGHT - 10 * 60_000, presence: 'present' });
    const r = runtime({ timers: { heartbeatTimeoutMs: 90_000 } });
    await r.runTimer('heartbeatCheck');
    await eventually(async () => (await s.prisma.host.findUniqueOrThrow({ where: { id: office.hostId } })).needsReconcile, 'the host to be fenced');
    // The agent reconnects: the gateway marks the host online with a fresh heartbeat.
    await s.prisma.host.update({ where: { id: office.hostId }, data: { onlineState: 'online', lastHeartbeatAt: new Date(clock.now()) } });
    expect(await r.runTimer('heartbeatCheck')).toBe(1);
    const reconcile = await eventually(() => s.prisma.operation.findFirst({ where: { hostId: office.hostId, kind: 'reconcile', status: 'sent' } }).then((o) => o ?? undefined), 'the reconcile operation, sent');
    expect(reconcile.planned).toMatchObject({ type: 'reconcileHost', expect: { vms: [{ vmId: office.vmId, generation: 4 }] } });
    expect(reconcile.params).toEqual({ expect: { vms: [{ vmId: office.vmId, domainName: office.vmName, generation: 4 }], tasks: [] } });
    // Not asked for twice.
    expect(await r.runTimer('heartbeatCheck')).toBe(0);
  });

  it('a planning timer fans out into one tick per pool', async () => {
    const office = await createOffice(s.prisma, { now: NIGHT });
    const r = runtime();
    const pools = await s.prisma.pool.count();
    expect(await r.runTimer('idleCheck')).toBe(pools);
    await eventually(async () => (await s.prisma.desktopVm.findUniqueOrThrow({ where: { id: office.vmId } })).state === 'SUSPENDING', 'the suspend');
    expect(await suspendCount(office.vmId)).toBe(1);
  });

  it('re-publishes commands left pending', async () => {
    const office = await createOffice(s.prisma, { now: NIGHT });
    const r = runtime({ timers: { redispatchAfterMs: 1000 } });
    // Commit without dispatch, as if Redis had been unreachable at publish time.
    await r.engine.handle({ type: 'tick', id: 'tick.idleCheck.redispatch.1', timer: 'idleCheck', poolId: office.poolId });
    await s.prisma.operation.updateMany({ where: { vmId: office.vmId }, data: { status: 'pending', sentAt: null } });
    const listener = await listenForCommands(s, office.hostId);
    try {
      clock.advance(5000);
      expect(await r.runTimer('redispatch')).toBeGreaterThanOrEqual(1);
      await eventually(() => listener.frames.length > 0, 'the re-published command');
      expect((await s.prisma.operation.findFirstOrThrow({ where: { vmId: office.vmId } })).status).toBe('sent');
    } finally {
      listener.stop();
    }
  });

  it('publishes answers recorded by the gateway that never reached the scheduler', async () => {
    const office = await createOffice(s.prisma, { now: NIGHT });
    const r = runtime({ timers: { redispatchAfterMs: 1000 } });
    await r.engine.handle({ type: 'tick', id: 'tick.idleCheck.sweep.1', timer: 'idleCheck', poolId: office.poolId });
    // The gateway recorded the agent's answer, but its event was lost.
    await s.prisma.operation.updateMany({ where: { vmId: office.vmId }, data: { status: 'succeeded', finishedAt: new Date(clock.now()) } });
    clock.advance(5000);
    expect(await r.runTimer('resultSweep')).toBe(1);
    await eventually(async () => (await s.prisma.desktopVm.findUniqueOrThrow({ where: { id: office.vmId } })).state === 'SUSPENDED', 'the desktop to be SUSPENDED');
    expect(await r.runTimer('resultSweep')).toBe(0);
  });
});
