// Agent frames, as the API's agent gateway appends them to its Redis stream, drive the
// scheduler end to end: a tap restores the desktop; the agent's answer makes it RUNNING.
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createSchedulerRuntime, type SchedulerRuntime } from '../src/runtime/runtime.js';
import { createOffice, eventually, listenForCommands, ManualClock, NIGHT, startServices, type TestServices } from './runtime-fixtures.js';

let s: TestServices;
let stream: string;
const clock = new ManualClock(NIGHT);
const connections: Redis[] = [];
const running: SchedulerRuntime[] = [];

function connection(): Redis {
  const c = s.redis.duplicate();
  connections.push(c);
  return c;
}

beforeAll(async () => {
  s = await startServices();
  stream = `${s.tag}:agentgw:events`;
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.close()));
});
afterAll(async () => {
  for (const c of connections) c.disconnect();
  await s?.close();
});

function runtime(): SchedulerRuntime {
  const r = createSchedulerRuntime({
    prisma: s.prisma,
    redis: s.redis,
    connection: connection(),
    queuePrefix: s.queuePrefix,
    channelPrefix: s.channelPrefix,
    clock,
    agentBridge: { redis: connection(), stream, },
  });
  running.push(r);
  return r;
}

/** What the gateway does with a frame the scheduler reacts to (apps/api/src/agent/frames.ts). */
async function gatewayAppends(hostId: string, frame: object): Promise<void> {
  await s.redis.xadd(stream, '*', 'hostId', hostId, 'frame', JSON.stringify(frame));
}

describe('agent events from the gateway stream', () => {
  it('a tap restores the suspended desktop; the agent reporting success makes it RUNNING', async () => {
    const office = await createOffice(s.prisma, { now: NIGHT });
    await s.prisma.desktopVm.update({
      where: { id: office.vmId },
      data: { state: 'SUSPENDED', currentHostId: null, savedStateHostId: office.hostId, savedStatePath: `/var/lib/deskpool/saved/${office.vmName}.save` },
    });
    const listener = await listenForCommands(s, office.hostId);
    try {
      const r = runtime();
      await eventually(async () => ((await s.redis.xinfo('GROUPS', stream).catch(() => [])) as unknown[]).length > 0 && r, 'the bridge to join the stream');
      await gatewayAppends(office.hostId, { type: 'presence', seq: 7, at: new Date(NIGHT).toISOString(), state: 'present', idleSince: null, source: 'evdev' });

      const frames = await eventually(() => listener.frames.length > 0 && listener.frames, 'the restore command');
      const restore = frames[0] as { kind: string; idempotencyKey: string };
      expect(restore.kind).toBe('restore');
      expect(await s.prisma.desktopVm.findUniqueOrThrow({ where: { id: office.vmId } })).toMatchObject({ state: 'RESTORING', currentHostId: office.hostId });

      // The gateway records the answer on the operation row, then appends the frame.
      await s.prisma.operation.update({ where: { idempotencyKey: restore.idempotencyKey }, data: { status: 'succeeded' } });
      await gatewayAppends(office.hostId, { type: 'op-result', seq: 8, at: new Date(NIGHT + 5000).toISOString(), idempotencyKey: restore.idempotencyKey, outcome: 'succeeded', replayed: false });
      await eventually(async () => (await s.prisma.desktopVm.findUniqueOrThrow({ where: { id: office.vmId } })).state === 'RUNNING', 'the desktop to run');
      const vm = await s.prisma.desktopVm.findUniqueOrThrow({ where: { id: office.vmId } });
      expect(vm).toMatchObject({ currentHostId: office.hostId, fencingGeneration: 4 });
      const actions = (await s.prisma.auditEvent.findMany({ where: { entityType: 'vm', entityId: office.vmId }, orderBy: { id: 'asc' } })).map((a) => a.action);
      expect(actions).toEqual(['vm.state.SUSPENDED->RESTORING', 'vm.state.RESTORING->RUNNING']);
      // Every entry was acknowledged.
      const pending = (await s.redis.xpending(stream, 'deskpool-scheduler')) as [number, ...unknown[]];
      expect(pending[0]).toBe(0);
    } finally {
      listener.stop();
    }
  });

  it('ignores frames it does not act on and malformed entries, acknowledging them', async () => {
    runtime();
    await eventually(async () => ((await s.redis.xinfo('GROUPS', stream).catch(() => [])) as unknown[]).length > 0, 'the bridge to join the stream');
    await s.redis.xadd(stream, '*', 'hostId', 'h', 'frame', '{not json');
    await s.redis.xadd(stream, '*', 'hostId', 'h', 'frame', JSON.stringify({ type: 'domain-state', seq: 1, at: new Date(NIGHT).toISOString(), domains: [] }));
    await s.redis.xadd(stream, '*', 'hostId', 'h', 'frame', JSON.stringify({ type: 'presence', seq: 2, state: 'sleepy' }));
    await eventually(async () => {
      const [count] = (await s.redis.xpending(stream, 'deskpool-scheduler')) as [number];
      const info = (await s.redis.xinfo('GROUPS', stream)) as unknown[][];
      const lastDelivered = info[0]?.[info[0].indexOf('last-delivered-id') + 1];
      const [last] = (await s.redis.xrevrange(stream, '+', '-', 'COUNT', 1)) as [string, string[]][];
      return count === 0 && last !== undefined && lastDelivered === last[0];
    }, 'all entries read and acknowledged');
    expect(await s.prisma.auditEvent.count({ where: { entityType: 'scheduler-event' } })).toBe(0);
  });
});
