// A PC that went silent and came back, end to end through the runtime on real PostgreSQL and
// Redis: its desktop is LOST, the PC is asked to reconcile (a real protocol frame on its
// channel), and the agent's answer makes the PC usable and the desktop reachable again.
import { commandFrameSchema, type CommandFrame } from '@deskpool/protocol';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SchedulerEngine } from '../src/runtime/engine.js';
import { createSchedulerRuntime, type SchedulerRuntime } from '../src/runtime/runtime.js';
import { createOffice, eventually, listenForCommands, ManualClock, NIGHT, startServices, type Office, type TestServices } from './runtime-fixtures.js';

let s: TestServices;
const clock = new ManualClock(NIGHT);
const MINUTE = 60_000;

beforeAll(async () => {
  s = await startServices();
});
const running: SchedulerRuntime[] = [];
const connections: Redis[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.close()));
});
afterAll(async () => {
  for (const c of connections) c.disconnect();
  await s?.close();
});
beforeEach(() => {
  clock.set(NIGHT);
});

function engine(): SchedulerEngine {
  return new SchedulerEngine({ prisma: s.prisma, redis: s.redis, clock, channelPrefix: s.channelPrefix });
}

/** Heartbeat lost, then the PC is heard from again: returns the reconcile frame it was sent. */
async function fenceAndBringBack(office: Office, tag: string): Promise<CommandFrame> {
  const listener = await listenForCommands(s, office.hostId);
  try {
    expect(await engine().handle({ type: 'heartbeatLost', id: `hblost.${tag}`, hostId: office.hostId })).toMatchObject({ status: 'committed' });
    expect(await s.prisma.desktopVm.findUniqueOrThrow({ where: { id: office.vmId } })).toMatchObject({ state: 'LOST', fencingGeneration: 4 });
    expect(await s.prisma.host.findUniqueOrThrow({ where: { id: office.hostId } })).toMatchObject({ onlineState: 'offline', needsReconcile: true });

    clock.advance(5 * MINUTE);
    expect(await engine().handle({ type: 'hostBack', id: `hostback.${tag}`, hostId: office.hostId })).toMatchObject({ status: 'committed', dispatched: 1 });
    const [op, ...more] = await s.prisma.operation.findMany({ where: { hostId: office.hostId, kind: 'reconcile' } });
    expect(more).toHaveLength(0);
    expect(op).toMatchObject({ status: 'sent', generation: 0 });
    const frames = await eventually(() => listener.frames.length > 0 && listener.frames, 'the reconcile command on the host channel');
    const frame = commandFrameSchema.parse(frames[0]);
    expect(frame).toMatchObject({
      kind: 'reconcile',
      idempotencyKey: op?.idempotencyKey,
      operationId: op?.id,
      params: { expect: { vms: [{ vmId: office.vmId, domainName: office.vmName, generation: 4 }], tasks: [] } },
    });
    expect(frame.target).toBeUndefined();
    // Still fenced until the agent answers: nothing may start there yet.
    expect(await s.prisma.host.findUniqueOrThrow({ where: { id: office.hostId } })).toMatchObject({ onlineState: 'online', needsReconcile: true });
    return frame;
  } finally {
    listener.stop();
  }
}

describe('a fenced PC comes back', () => {
  it('adopts the desktop the agent found still running', async () => {
    const office = await createOffice(s.prisma, { now: NIGHT, presence: 'present' });
    const frame = await fenceAndBringBack(office, 'adopt');
    const outcome = await engine().handle({
      type: 'operationResult',
      id: `result.${frame.idempotencyKey}.succeeded`,
      idempotencyKey: frame.idempotencyKey,
      outcome: 'succeeded',
      foundRunningVmIds: [office.vmId],
    });
    expect(outcome).toMatchObject({ status: 'committed' });
    expect(await s.prisma.host.findUniqueOrThrow({ where: { id: office.hostId } })).toMatchObject({ onlineState: 'online', needsReconcile: false });
    expect(await s.prisma.desktopVm.findUniqueOrThrow({ where: { id: office.vmId } })).toMatchObject({ state: 'RUNNING', currentHostId: office.hostId, fencingGeneration: 4 });
    expect(await s.prisma.operation.findFirstOrThrow({ where: { idempotencyKey: frame.idempotencyKey } })).toMatchObject({ settledAt: expect.any(Date) });
    const audit = (await s.prisma.auditEvent.findMany({ where: { entityType: 'vm', entityId: office.vmId }, orderBy: { id: 'asc' } })).map((a) => a.action);
    expect(audit).toEqual(['vm.state.RUNNING->LOST', 'vm.lost', 'vm.state.LOST->RUNNING']);
  });

  it('with nothing found, stops the desktop; a tap then boots it on the PC again', async () => {
    const office = await createOffice(s.prisma, { now: NIGHT, presence: 'idle' });
    const frame = await fenceAndBringBack(office, 'stopped');
    await engine().handle({ type: 'operationResult', id: `result.${frame.idempotencyKey}.succeeded`, idempotencyKey: frame.idempotencyKey, outcome: 'succeeded', foundRunningVmIds: [] });
    expect(await s.prisma.host.findUniqueOrThrow({ where: { id: office.hostId } })).toMatchObject({ needsReconcile: false });
    expect(await s.prisma.desktopVm.findUniqueOrThrow({ where: { id: office.vmId } })).toMatchObject({ state: 'STOPPED', currentHostId: null });

    const listener = await listenForCommands(s, office.hostId);
    try {
      clock.advance(MINUTE);
      expect(await engine().handle({ type: 'presence', id: 'presence.after-reconcile.1', hostId: office.hostId, presence: 'present' })).toMatchObject({ status: 'committed', dispatched: 1 });
      expect(await s.prisma.desktopVm.findUniqueOrThrow({ where: { id: office.vmId } })).toMatchObject({ state: 'RESTORING', currentHostId: office.hostId, fencingGeneration: 5 });
      const frames = await eventually(() => listener.frames.length > 0 && listener.frames, 'the start command after the tap');
      expect(commandFrameSchema.parse(frames[0])).toMatchObject({ kind: 'start', target: { vmId: office.vmId, domainName: office.vmName, generation: 5 } });
    } finally {
      listener.stop();
    }
  });

  it('a failed reconcile keeps the PC fenced', async () => {
    const office = await createOffice(s.prisma, { now: NIGHT, presence: 'present' });
    const frame = await fenceAndBringBack(office, 'failed');
    await engine().handle({ type: 'operationResult', id: `result.${frame.idempotencyKey}.failed`, idempotencyKey: frame.idempotencyKey, outcome: 'failed', error: 'AGENT_ERROR: virsh list failed' });
    expect(await s.prisma.host.findUniqueOrThrow({ where: { id: office.hostId } })).toMatchObject({ needsReconcile: true });
    expect(await s.prisma.desktopVm.findUniqueOrThrow({ where: { id: office.vmId } })).toMatchObject({ state: 'LOST' });
  });

  it('a reconcile answer whose event was lost is swept up with its findings', async () => {
    const office = await createOffice(s.prisma, { now: NIGHT, presence: 'present' });
    const frame = await fenceAndBringBack(office, 'swept');
    // The gateway recorded the agent's answer (as apps/api does), but the event never arrived.
    await s.prisma.operation.update({
      where: { idempotencyKey: frame.idempotencyKey },
      data: { status: 'succeeded', finishedAt: new Date(clock.now()), result: { foundRunningVmIds: [office.vmId], foundRunningTaskIds: [], destroyed: [], changed: false } },
    });
    clock.advance(5000);
    const connection = s.redis.duplicate();
    connections.push(connection);
    const r = createSchedulerRuntime({ prisma: s.prisma, redis: s.redis, connection, queuePrefix: s.queuePrefix, channelPrefix: s.channelPrefix, clock, concurrency: 1, scheduleTimers: false, timers: { redispatchAfterMs: 1000 } });
    running.push(r);
    expect(await r.runTimer('resultSweep')).toBe(1);
    await eventually(async () => !(await s.prisma.host.findUniqueOrThrow({ where: { id: office.hostId } })).needsReconcile, 'the PC to be reconciled');
    expect(await s.prisma.desktopVm.findUniqueOrThrow({ where: { id: office.vmId } })).toMatchObject({ state: 'RUNNING', currentHostId: office.hostId });
  });
});

describe('batch on a PC that went silent', () => {
  it('is held there, not placed on a free PC, until the reconcile says what still runs', async () => {
    const office = await createOffice(s.prisma, { now: NIGHT, presence: 'idle' });
    const job = await s.prisma.batchJob.create({
      data: { name: 'crunch', submittedBy: 'user:x', poolId: office.poolId, spec: { name: 'crunch', command: ['true'], cores: 2, memoryMiB: 1024 }, taskCount: 2, tasks: { create: [0, 1].map((index) => ({ index })) } },
    });
    expect(await engine().handle({ type: 'jobSubmitted', id: `job.${job.id}`, jobId: job.id })).toMatchObject({ status: 'committed', operations: 2 });
    const placed = await s.prisma.batchTask.findMany({ where: { jobId: job.id }, orderBy: { index: 'asc' } });
    expect(placed.map((t) => [t.state, t.hostId])).toEqual([['running', office.hostId], ['running', office.hostId]]);

    expect(await engine().handle({ type: 'heartbeatLost', id: 'hblost.batch', hostId: office.hostId })).toMatchObject({ status: 'committed' });
    // A free PC appears: the held tasks must not start there while the silent PC may run them.
    const spare = await s.prisma.host.create({
      data: { name: `pc-spare-${office.poolId.slice(0, 8)}`, poolId: office.poolId, cores: 8, memoryMiB: 16384, diskGiB: 100, onlineState: 'online', presenceState: 'idle', presenceSince: new Date(NIGHT - 3600_000), lastHeartbeatAt: new Date(NIGHT) },
    });
    clock.advance(MINUTE);
    await engine().handle({ type: 'tick', id: 'tick.placement.held.1', timer: 'placement', poolId: office.poolId });
    expect(await s.prisma.operation.count({ where: { hostId: spare.id } })).toBe(0);
    const held = await s.prisma.batchTask.findMany({ where: { jobId: job.id }, orderBy: { index: 'asc' } });
    expect(held.map((t) => [t.state, t.hostId, t.generation])).toEqual(placed.map((t) => ['running', office.hostId, t.generation]));

    const listener = await listenForCommands(s, office.hostId);
    let frame: CommandFrame;
    try {
      clock.advance(MINUTE);
      await engine().handle({ type: 'hostBack', id: 'hostback.batch', hostId: office.hostId });
      const frames = await eventually(() => listener.frames.length > 0 && listener.frames, 'the reconcile command');
      frame = commandFrameSchema.parse(frames[0]);
    } finally {
      listener.stop();
    }
    const expected = frame.kind === 'reconcile' ? frame.params.expect.tasks.map((t) => t.taskId).sort() : [];
    expect(expected).toEqual(placed.map((t) => t.id).sort());

    // The agent found the first task still running and not the second.
    const [kept, gone] = placed as [(typeof placed)[0], (typeof placed)[0]];
    await engine().handle({ type: 'operationResult', id: `result.${frame.idempotencyKey}.succeeded`, idempotencyKey: frame.idempotencyKey, outcome: 'succeeded', foundRunningVmIds: [], foundRunningTaskIds: [kept.id] });
    expect(await s.prisma.batchTask.findUniqueOrThrow({ where: { id: kept.id } })).toMatchObject({ state: 'running', hostId: office.hostId, generation: kept.generation });
    expect(await s.prisma.batchTask.findUniqueOrThrow({ where: { id: gone.id } })).toMatchObject({ state: 'queued', hostId: null, generation: gone.generation + 1 });
  });
});
