// Two workers, a stream of taps, idle reports and idle checks in random order, and agents that
// answer every command (as the gateway records answers): afterwards the database must satisfy
// the core's invariants, and no desktop may have been told the same thing twice.
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkInvariants } from '../src/core/invariants.js';
import { SchedulerEvents } from '../src/runtime/queues.js';
import { createSchedulerRuntime, type SchedulerRuntime } from '../src/runtime/runtime.js';
import { loadSnapshot } from '../src/runtime/snapshot.js';
import { createOffice, eventually, ManualClock, NIGHT, startServices, type Office, type TestServices } from './runtime-fixtures.js';

let s: TestServices;
const clock = new ManualClock(NIGHT);
const connections: Redis[] = [];

function connection(): Redis {
  const c = s.redis.duplicate();
  connections.push(c);
  return c;
}

beforeAll(async () => {
  s = await startServices();
});
afterAll(async () => {
  for (const c of connections) c.disconnect();
  await s?.close();
});

/** Answers every command on the offices' channels: records the result like the gateway, then reports it. */
async function simulatedAgents(offices: Office[], events: SchedulerEvents): Promise<{ stop(): void; answered: () => number }> {
  const sub = connection();
  let answered = 0;
  sub.on('message', (_channel: string, message: string) => {
    const frame = JSON.parse(message) as { idempotencyKey: string };
    void (async () => {
      const { count } = await s.prisma.operation.updateMany({ where: { idempotencyKey: frame.idempotencyKey, status: { in: ['pending', 'sent'] } }, data: { status: 'succeeded', finishedAt: new Date(clock.now()) } });
      if (count === 0) return; // a repeat: the agent's journal answers it without acting again
      answered += 1;
      await events.publishOperationResult({ idempotencyKey: frame.idempotencyKey, outcome: 'succeeded' });
    })();
  });
  await sub.subscribe(...offices.map((o) => `${s.channelPrefix}${o.hostId}`));
  return { stop: () => sub.disconnect(), answered: () => answered };
}

type Step = { kind: 'present' | 'idle'; office: number } | { kind: 'idleCheck'; advanceMin: number };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constantFrom('present' as const, 'idle' as const), office: fc.nat({ max: 3 }) }),
  fc.record({ kind: fc.constant('idleCheck' as const), advanceMin: fc.integer({ min: 1, max: 30 }) }),
);

describe('soak: random events, two workers, answering agents', () => {
  it('keeps the invariants and never repeats a command', async () => {
    const offices: Office[] = [];
    const first = await createOffice(s.prisma, { now: NIGHT });
    offices.push(first);
    // Three more PCs and people in the same pool, so the workers contend for one pool lock.
    for (let i = 0; i < 3; i += 1) {
      const other = await createOffice(s.prisma, { now: NIGHT });
      await s.prisma.host.update({ where: { id: other.hostId }, data: { poolId: first.poolId } });
      await s.prisma.user.update({ where: { id: other.userId }, data: { poolId: first.poolId } });
      await s.prisma.desktopVm.update({ where: { id: other.vmId }, data: { poolId: first.poolId } });
      offices.push({ ...other, poolId: first.poolId });
    }
    const steps = fc.sample(fc.array(stepArb, { minLength: 40, maxLength: 40 }), { numRuns: 1, seed: 20261126 })[0] ?? [];
    const publisher = new SchedulerEvents({ connection: connection(), prefix: s.queuePrefix });
    const agents = await simulatedAgents(offices, publisher);
    const workers: SchedulerRuntime[] = [1, 2].map(() =>
      createSchedulerRuntime({ prisma: s.prisma, redis: s.redis, connection: connection(), queuePrefix: s.queuePrefix, channelPrefix: s.channelPrefix, clock, concurrency: 3, lockDurationMs: 5000, stalledIntervalMs: 1000 }),
    );
    try {
      let n = 0;
      for (const step of steps) {
        n += 1;
        if (step.kind === 'idleCheck') {
          clock.advance(step.advanceMin * 60_000);
          await publisher.publishTick({ timer: 'idleCheck', poolId: first.poolId, slot: n });
        } else {
          const office = offices[step.office] as Office;
          await publisher.publishPresence({ hostId: office.hostId, presence: step.kind, at: clock.now() + n });
        }
      }
      // Quiet: no queued events and every command answered.
      await eventually(
        async () => {
          const busy = await publisher.queue.getJobCountByTypes('waiting', 'prioritized', 'active', 'delayed');
          const unanswered = await s.prisma.operation.count({ where: { kind: { in: ['suspend', 'restore', 'start'] }, status: { in: ['pending', 'sent'] } } });
          return busy === 0 && unanswered === 0;
        },
        'the office to settle',
        60_000,
      );
      const failed = await publisher.queue.getFailedCount();
      expect(failed).toBe(0);

      const loaded = await loadSnapshot(s.prisma, { poolIds: [first.poolId] });
      expect(checkInvariants(loaded.snapshot)).toEqual([]);
      // A command is never planned twice for the same desktop, generation and kind.
      const ops = await s.prisma.operation.findMany({ where: { vmId: { in: offices.map((o) => o.vmId) } }, select: { vmId: true, generation: true, kind: true } });
      const seen = new Set(ops.map((o) => `${o.vmId}/${o.generation}/${o.kind}`));
      expect(seen.size).toBe(ops.length);
      expect(agents.answered()).toBeGreaterThan(0);
      // Every desktop state change is in the audit trail with its cause.
      const changes = await s.prisma.auditEvent.findMany({ where: { entityType: 'vm', action: { startsWith: 'vm.state.' } } });
      expect(changes.every((c) => c.actor === 'scheduler' && /^event:\w+#\S+ rule:\S+$/.test(c.cause))).toBe(true);
      const suspends = ops.filter((o) => o.kind === 'suspend').length;
      expect(changes.filter((c) => c.action === 'vm.state.RUNNING->SUSPENDING')).toHaveLength(suspends);
    } finally {
      agents.stop();
      await Promise.all(workers.map((w) => w.close()));
      await publisher.close();
    }
  });
});
