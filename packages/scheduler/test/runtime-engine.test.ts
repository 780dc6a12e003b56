// The engine on real PostgreSQL and Redis: load, plan, commit in one transaction, dispatch.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SchedulerEngine } from '../src/runtime/engine.js';
import { pendingCommandsForHost, pendingCommandsForHosts } from '../src/runtime/dispatch.js';
import { createOffice, eventually, listenForCommands, ManualClock, NIGHT, startServices, type TestServices } from './runtime-fixtures.js';

let s: TestServices;
const clock = new ManualClock(NIGHT);

beforeAll(async () => {
  s = await startServices();
});
afterAll(async () => {
  await s?.close();
});
// Tests advance the shared clock; each starts from the same night so none depends on order.
beforeEach(() => {
  clock.set(NIGHT);
});

function engine(): SchedulerEngine {
  return new SchedulerEngine({ prisma: s.prisma, redis: s.redis, clock, channelPrefix: s.channelPrefix });
}

async function suspendOperations(vmId: string) {
  return s.prisma.operation.findMany({ where: { vmId, kind: 'suspend' } });
}

describe('idle desktops at night', () => {
  it('suspends a desktop idle past the threshold: operation row, audit event and a command on the host channel', async () => {
    const office = await createOffice(s.prisma, { now: NIGHT });
    const listener = await listenForCommands(s, office.hostId);
    try {
      const outcome = await engine().handle({ type: 'tick', id: 'tick.idleCheck.a.1', timer: 'idleCheck', poolId: office.poolId });
      expect(outcome).toMatchObject({ status: 'committed', operations: 1, dispatched: 1 });

      const vm = await s.prisma.desktopVm.findUniqueOrThrow({ where: { id: office.vmId } });
      expect(vm.state).toBe('SUSPENDING');
      expect(vm.fencingGeneration).toBe(4);
      expect(vm.version).toBe(2);

      const [op, ...more] = await suspendOperations(office.vmId);
      expect(more).toHaveLength(0);
      expect(op).toMatchObject({ hostId: office.hostId, generation: 4, status: 'sent', kind: 'suspend' });
      expect(op?.idempotencyKey).toMatch(/^op-[0-9a-f]{40}$/);

      const audit = await s.prisma.auditEvent.findMany({ where: { entityType: 'vm', entityId: office.vmId } });
      expect(audit).toHaveLength(1);
      expect(audit[0]).toMatchObject({ action: 'vm.state.RUNNING->SUSPENDING', actor: 'scheduler' });
      expect(audit[0]?.cause).toContain('rule:desktop.idleSuspend');
      expect(audit[0]?.cause).toContain('tick.idleCheck.a.1');

      const frames = await eventually(() => listener.frames.length > 0 && listener.frames, 'the suspend command on the host channel');
      expect(frames[0]).toMatchObject({
        type: 'command',
        kind: 'suspend',
        idempotencyKey: op?.idempotencyKey,
        operationId: op?.id,
        target: { vmId: office.vmId, domainName: office.vmName, generation: 4 },
      });
    } finally {
      listener.stop();
    }
  });

  it('an idle report, then the idle check past the threshold, suspends the desktop', async () => {
    const office = await createOffice(s.prisma, { now: NIGHT, presence: 'present' });
    const start = new SchedulerEngine({ prisma: s.prisma, redis: s.redis, clock: new ManualClock(NIGHT), channelPrefix: s.channelPrefix });
    expect(await start.handle({ type: 'presence', id: 'presence.idle.j.1', hostId: office.hostId, presence: 'idle' })).toMatchObject({ status: 'committed', operations: 0 });
    const host = await s.prisma.host.findUniqueOrThrow({ where: { id: office.hostId } });
    expect(host).toMatchObject({ presenceState: 'idle', presenceSince: new Date(NIGHT) });

    const early = new SchedulerEngine({ prisma: s.prisma, redis: s.redis, clock: new ManualClock(NIGHT + 10 * 60_000), channelPrefix: s.channelPrefix });
    expect(await early.handle({ type: 'tick', id: 'tick.idleCheck.j.1', timer: 'idleCheck', poolId: office.poolId })).toMatchObject({ operations: 0 });
    const late = new SchedulerEngine({ prisma: s.prisma, redis: s.redis, clock: new ManualClock(NIGHT + 16 * 60_000), channelPrefix: s.channelPrefix });
    expect(await late.handle({ type: 'tick', id: 'tick.idleCheck.j.2', timer: 'idleCheck', poolId: office.poolId })).toMatchObject({ operations: 1 });
    expect((await s.prisma.desktopVm.findUniqueOrThrow({ where: { id: office.vmId } })).state).toBe('SUSPENDING');
  });

  it('leaves a desktop idle for less than the threshold running', async () => {
    const office = await createOffice(s.prisma, { now: NIGHT, idleSince: NIGHT - 5 * 60_000 });
    const outcome = await engine().handle({ type: 'tick', id: 'tick.idleCheck.b.1', timer: 'idleCheck', poolId: office.poolId });
    expect(outcome).toMatchObject({ status: 'committed', operations: 0 });
    expect((await s.prisma.desktopVm.findUniqueOrThrow({ where: { id: office.vmId } })).state).toBe('RUNNING');
  });

  it('handles the same event twice as one: one operation, the second run changes nothing', async () => {
    const office = await createOffice(s.prisma, { now: NIGHT });
    const event = { type: 'tick' as const, id: 'tick.idleCheck.c.1', timer: 'idleCheck' as const, poolId: office.poolId };
    expect(await engine().handle(event)).toMatchObject({ status: 'committed', operations: 1 });
    const second = await engine().handle(event);
    expect(second.status === 'duplicate' || (second.status === 'committed' && second.operations === 0)).toBe(true);
    expect(await suspendOperations(office.vmId)).toHaveLength(1);
    expect(await s.prisma.auditEvent.count({ where: { entityType: 'vm', entityId: office.vmId } })).toBe(1);
  });

  it('two engines racing on the same events act once', async () => {
    const office = await createOffice(s.prisma, { now: NIGHT });
    const a = engine();
    const b = engine();
    const events = [1, 2, 3].map((i) => ({ type: 'tick' as const, id: `tick.idleCheck.d.${i}`, timer: 'idleCheck' as const, poolId: office.poolId }));
    await Promise.all(events.flatMap((e) => [a.handle(e), b.handle(e)]));
    expect(await suspendOperations(office.vmId)).toHaveLength(1);
    const vm = await s.prisma.desktopVm.findUniqueOrThrow({ where: { id: office.vmId } });
    expect(vm).toMatchObject({ state: 'SUSPENDING', fencingGeneration: 4 });
  });
});

describe('operation results', () => {
  it('a succeeded suspend makes the desktop SUSPENDED with its saved state on the host, audited', async () => {
    const office = await createOffice(s.prisma, { now: NIGHT });
    await engine().handle({ type: 'tick', id: 'tick.idleCheck.e.1', timer: 'idleCheck', poolId: office.poolId });
    const [op] = await suspendOperations(office.vmId);
    if (!op) throw new Error('no suspend operation');
    // What the agent gateway records when the op-result frame arrives.
    await s.prisma.operation.update({ where: { id: op.id }, data: { status: 'succeeded', finishedAt: new Date(NIGHT) } });
    clock.advance(20_000);
    const outcome = await engine().handle({ type: 'operationResult', id: `result.${op.idempotencyKey}.succeeded`, idempotencyKey: op.idempotencyKey, outcome: 'succeeded' });
    expect(outcome).toMatchObject({ status: 'committed' });

    const vm = await s.prisma.desktopVm.findUniqueOrThrow({ where: { id: office.vmId } });
    expect(vm).toMatchObject({ state: 'SUSPENDED', currentHostId: null, savedStateHostId: office.hostId, savedStatePath: `/var/lib/deskpool/saved/${office.vmName}.save` });
    const settled = await s.prisma.operation.findUniqueOrThrow({ where: { id: op.id } });
    expect(settled.settledAt).not.toBeNull();
    const actions = (await s.prisma.auditEvent.findMany({ where: { entityType: 'vm', entityId: office.vmId }, orderBy: { id: 'asc' } })).map((a) => a.action);
    expect(actions).toEqual(['vm.state.RUNNING->SUSPENDING', 'vm.state.SUSPENDING->SUSPENDED']);

    // The same answer again (a re-sent frame) changes nothing.
    const again = await engine().handle({ type: 'operationResult', id: `result.${op.idempotencyKey}.succeeded-again`, idempotencyKey: op.idempotencyKey, outcome: 'succeeded' });
    expect(again).toMatchObject({ status: 'committed', transitions: 0 });
  });

  it('ignores an answer carrying a superseded generation', async () => {
    const office = await createOffice(s.prisma, { now: NIGHT });
    await engine().handle({ type: 'tick', id: 'tick.idleCheck.f.1', timer: 'idleCheck', poolId: office.poolId });
    const [op] = await suspendOperations(office.vmId);
    if (!op) throw new Error('no suspend operation');
    const outcome = await engine().handle({ type: 'operationResult', id: 'result.stale.f', idempotencyKey: op.idempotencyKey, outcome: 'succeeded', generation: op.generation - 1 });
    expect(outcome).toMatchObject({ status: 'committed' });
    if (outcome.status === 'committed') expect(outcome.reasons.some((r) => r.startsWith('staleResult'))).toBe(true);
    const vm = await s.prisma.desktopVm.findUniqueOrThrow({ where: { id: office.vmId } });
    expect(vm.state).toBe('SUSPENDING');
  });
});

describe('a tap', () => {
  it('restores a suspended desktop at once on the PC where the person sits', async () => {
    const office = await createOffice(s.prisma, { now: NIGHT });
    await s.prisma.desktopVm.update({
      where: { id: office.vmId },
      data: { state: 'SUSPENDED', currentHostId: null, savedStateHostId: office.hostId, savedStatePath: `/var/lib/deskpool/saved/${office.vmName}.save` },
    });
    const listener = await listenForCommands(s, office.hostId);
    try {
      const outcome = await engine().handle({ type: 'presence', id: 'presence.g.present.1', hostId: office.hostId, presence: 'present' });
      expect(outcome).toMatchObject({ status: 'committed', operations: 1, dispatched: 1 });
      const vm = await s.prisma.desktopVm.findUniqueOrThrow({ where: { id: office.vmId } });
      expect(vm).toMatchObject({ state: 'RESTORING', currentHostId: office.hostId, fencingGeneration: 4 });
      const host = await s.prisma.host.findUniqueOrThrow({ where: { id: office.hostId } });
      expect(host.presenceState).toBe('present');
      // The first tap of the day goes into the arrival history pre-staging learns from.
      const user = await s.prisma.user.findUniqueOrThrow({ where: { id: office.userId } });
      expect(user.arrivals.map((d) => d.getTime())).toEqual([NIGHT]);
      expect(await s.prisma.auditEvent.count({ where: { entityType: 'user', entityId: office.userId, action: 'prestage.arrival' } })).toBe(1);
      const frames = await eventually(() => listener.frames.length > 0 && listener.frames, 'the restore command');
      expect(frames[0]).toMatchObject({ kind: 'restore', target: { vmId: office.vmId, generation: 4 } });
    } finally {
      listener.stop();
    }
  });
});

describe('heartbeat loss', () => {
  it('marks the desktop LOST under a new generation and the host as needing reconcile', async () => {
    const office = await createOffice(s.prisma, { now: NIGHT, presence: 'present' });
    const outcome = await engine().handle({ type: 'heartbeatLost', id: 'hblost.h.1', hostId: office.hostId });
    expect(outcome).toMatchObject({ status: 'committed' });
    const vm = await s.prisma.desktopVm.findUniqueOrThrow({ where: { id: office.vmId } });
    expect(vm).toMatchObject({ state: 'LOST', fencingGeneration: 4, currentHostId: office.hostId });
    const host = await s.prisma.host.findUniqueOrThrow({ where: { id: office.hostId } });
    expect(host).toMatchObject({ onlineState: 'offline', needsReconcile: true });
    const actions = (await s.prisma.auditEvent.findMany({ where: { entityType: 'vm', entityId: office.vmId }, orderBy: { id: 'asc' } })).map((a) => a.action);
    expect(actions).toEqual(['vm.state.RUNNING->LOST', 'vm.lost']);
  });
});

describe('stale plans', () => {
  it('re-plans from a fresh snapshot when a row changed between snapshot and commit', async () => {
    const office = await createOffice(s.prisma, { now: NIGHT });
    const attempts: number[] = [];
    const e = new SchedulerEngine({
      prisma: s.prisma,
      redis: s.redis,
      clock,
      channelPrefix: s.channelPrefix,
      // Another writer (the API, say) changes the desktop while the first plan is being made.
      beforeCommit: async (_event, attempt) => {
        attempts.push(attempt);
        if (attempt === 0) await s.prisma.desktopVm.update({ where: { id: office.vmId }, data: { version: { increment: 1 } } });
      },
    });
    const outcome = await e.handle({ type: 'tick', id: 'tick.idleCheck.h.1', timer: 'idleCheck', poolId: office.poolId });
    expect(attempts).toEqual([0, 1]);
    expect(outcome).toMatchObject({ status: 'committed', operations: 1, replans: 1 });
    expect(await suspendOperations(office.vmId)).toHaveLength(1);
    expect((await s.prisma.desktopVm.findUniqueOrThrow({ where: { id: office.vmId } })).version).toBe(3);
  });

  it('gives up after the re-plan limit so the queue retries later', async () => {
    const office = await createOffice(s.prisma, { now: NIGHT });
    const e = new SchedulerEngine({
      prisma: s.prisma,
      redis: s.redis,
      clock,
      channelPrefix: s.channelPrefix,
      maxReplans: 2,
      beforeCommit: async () => {
        await s.prisma.desktopVm.update({ where: { id: office.vmId }, data: { version: { increment: 1 } } });
      },
    });
    await expect(e.handle({ type: 'tick', id: 'tick.idleCheck.h.2', timer: 'idleCheck', poolId: office.poolId })).rejects.toThrow(/re-planned 3 times/);
    expect(await suspendOperations(office.vmId)).toHaveLength(0);
    expect((await s.prisma.desktopVm.findUniqueOrThrow({ where: { id: office.vmId } })).state).toBe('RUNNING');
  });
});

describe('batch placement', () => {
  it('commits every placement of a submitted job in one plan: task rows, operations, audit, commands', async () => {
    const office = await createOffice(s.prisma, { now: NIGHT });
    const spare = await s.prisma.host.create({
      data: { name: `pc-spare-${office.poolId.slice(0, 8)}`, poolId: office.poolId, cores: 8, memoryMiB: 16384, diskGiB: 100, onlineState: 'online', presenceState: 'idle', presenceSince: new Date(NIGHT - 3600_000), lastHeartbeatAt: new Date(NIGHT) },
    });
    const job = await s.prisma.batchJob.create({
      data: { name: 'render', submittedBy: 'user:x', poolId: office.poolId, spec: { name: 'render', command: ['true'], cores: 2, memoryMiB: 1024 }, taskCount: 6, tasks: { create: [0, 1, 2, 3, 4, 5].map((index) => ({ index })) } },
    });
    const outcome = await engine().handle({ type: 'jobSubmitted', id: `job.${job.id}`, jobId: job.id });
    expect(outcome).toMatchObject({ status: 'committed', operations: 6, dispatched: 6 });
    const tasks = await s.prisma.batchTask.findMany({ where: { jobId: job.id } });
    expect(tasks.every((t) => t.state === 'running' && t.version === 2 && t.generation === 1 && t.startedAt !== null)).toBe(true);
    expect(new Set(tasks.map((t) => t.hostId)).size).toBeGreaterThanOrEqual(1);
    expect(tasks.every((t) => t.hostId === office.hostId || t.hostId === spare.id)).toBe(true);
    const ops = await s.prisma.operation.findMany({ where: { taskId: { in: tasks.map((t) => t.id) } } });
    expect(ops).toHaveLength(6);
    expect(ops.every((o) => o.kind === 'run-batch' && o.status === 'sent' && o.generation === 1)).toBe(true);
    expect(await s.prisma.auditEvent.count({ where: { entityType: 'task', entityId: { in: tasks.map((t) => t.id) }, action: 'task.state.QUEUED->RUNNING' } })).toBe(6);
    // The same submission again places nothing more.
    const again = await engine().handle({ type: 'jobSubmitted', id: `job.${job.id}`, jobId: job.id });
    expect(again.status === 'duplicate' || (again.status === 'committed' && again.operations === 0)).toBe(true);
    expect(await s.prisma.operation.count({ where: { taskId: { in: tasks.map((t) => t.id) } } })).toBe(6);
  });
});

describe('commands for an agent that was offline', () => {
  it('lists unanswered commands for a host so the gateway can re-send them on connect', async () => {
    const office = await createOffice(s.prisma, { now: NIGHT });
    await engine().handle({ type: 'tick', id: 'tick.idleCheck.i.1', timer: 'idleCheck', poolId: office.poolId });
    const pending = await pendingCommandsForHost(s.prisma, office.hostId);
    expect(pending).toHaveLength(1);
    expect(pending[0]).toMatchObject({ kind: 'suspend', target: { vmId: office.vmId, domainName: office.vmName, generation: 4 } });
    const [op] = await suspendOperations(office.vmId);
    await s.prisma.operation.update({ where: { id: op?.id ?? '' }, data: { status: 'succeeded' } });
    expect(await pendingCommandsForHost(s.prisma, office.hostId)).toHaveLength(0);
  });

  it('lists unanswered commands of many hosts in one query, per host, oldest first, within the limit', async () => {
    const a = await createOffice(s.prisma, { now: NIGHT });
    const b = await createOffice(s.prisma, { now: NIGHT });
    const quiet = await createOffice(s.prisma, { now: NIGHT, presence: 'present' });
    await engine().handle({ type: 'tick', id: 'tick.idleCheck.many.a', timer: 'idleCheck', poolId: a.poolId });
    await engine().handle({ type: 'tick', id: 'tick.idleCheck.many.b', timer: 'idleCheck', poolId: b.poolId });
    // A second, later command on host a (a copy of its suspend under another key) to check order and limit.
    const [first] = await suspendOperations(a.vmId);
    const { id: _id, idempotencyKey: _key, createdAt, ...rest } = await s.prisma.operation.findUniqueOrThrow({ where: { id: first?.id ?? '' } });
    await s.prisma.operation.create({
      data: { ...rest, idempotencyKey: 'op-later-copy', createdAt: new Date(createdAt.getTime() + 1000), params: rest.params as object, planned: rest.planned as object, result: undefined },
    });

    const byHost = await pendingCommandsForHosts(s.prisma, [a.hostId, b.hostId, quiet.hostId]);
    expect([...byHost.keys()].sort()).toEqual([a.hostId, b.hostId].sort());
    expect(byHost.get(a.hostId)?.map((f) => f.idempotencyKey)).toEqual([...(await pendingCommandsForHost(s.prisma, a.hostId)).map((f) => f.idempotencyKey)]);
    expect(byHost.get(a.hostId)?.[1]?.idempotencyKey).toBe('op-later-copy');
    expect(byHost.get(b.hostId)).toEqual(await pendingCommandsForHost(s.prisma, b.hostId));
    expect(byHost.get(b.hostId)?.[0]).toMatchObject({ kind: 'suspend', target: { vmId: b.vmId, domainName: b.vmName } });
    const limited = await pendingCommandsForHosts(s.prisma, [a.hostId], 1);
    expect(limited.get(a.hostId)?.map((f) => f.idempotencyKey)).toEqual([first?.idempotencyKey]);
  });
});
