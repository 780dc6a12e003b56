// Hot-desking a running desktop on real PostgreSQL and Redis: the plan becomes a migrate-out on
// the source PC and a migrate-in on the target, and the answers of both settle it correctly.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SchedulerEngine } from '../src/runtime/engine.js';
import { pendingCommandsForHost } from '../src/runtime/dispatch.js';
import { createOffice, eventually, listenForCommands, ManualClock, NIGHT, startServices, type Office, type TestServices } from './runtime-fixtures.js';

let s: TestServices;
const clock = new ManualClock(NIGHT);

beforeAll(async () => {
  s = await startServices();
});
afterAll(async () => {
  await s?.close();
});
beforeEach(() => {
  clock.set(NIGHT);
});

const engine = (): SchedulerEngine => new SchedulerEngine({ prisma: s.prisma, redis: s.redis, clock, channelPrefix: s.channelPrefix });

/** An office whose person signs in at a second PC of the pool, which takes live migrations. */
async function hotDeskOffice(): Promise<Office & { targetId: string }> {
  const office = await createOffice(s.prisma, { now: NIGHT, presence: 'present' });
  const target = await s.prisma.host.create({
    data: {
      name: `pc-b-${randomBytes(3).toString('hex')}`,
      poolId: office.poolId,
      cores: 8,
      memoryMiB: 16384,
      diskGiB: 256,
      onlineState: 'online',
      presenceState: 'present',
      presenceSince: new Date(NIGHT),
      lastHeartbeatAt: new Date(NIGHT),
      inventory: { hypervisor: { migrationUri: 'qemu+ssh://root@10.0.0.2/system', migrationDataUri: 'tcp://10.0.0.2' } },
    },
  });
  return { ...office, targetId: target.id };
}

async function migrationOps(vmId: string) {
  const ops = await s.prisma.operation.findMany({ where: { vmId }, orderBy: { createdAt: 'asc' } });
  const out = ops.find((o) => o.kind === 'migrate-out');
  const into = ops.find((o) => o.kind === 'migrate-in');
  if (!out || !into) throw new Error(`expected both halves, got ${ops.map((o) => o.kind).join(', ')}`);
  return { out, into };
}

async function answer(idempotencyKey: string, outcome: 'succeeded' | 'failed', tag: string) {
  await s.prisma.operation.update({ where: { idempotencyKey }, data: { status: outcome, finishedAt: new Date(clock.now()) } });
  return engine().handle({ type: 'operationResult', id: `result.${tag}.${outcome}`, idempotencyKey, outcome, ...(outcome === 'failed' ? { error: 'MIGRATION_FAILED: x' } : {}) });
}

describe('hot-desking a running desktop', () => {
  it('sends migrate-out to the source and migrate-in to the target, both fenced with the new generation', async () => {
    const office = await hotDeskOffice();
    const atSource = await listenForCommands(s, office.hostId);
    const atTarget = await listenForCommands(s, office.targetId);
    try {
      const outcome = await engine().handle({ type: 'signIn', id: `signin.${office.userId}.1`, hostId: office.targetId, userId: office.userId });
      expect(outcome).toMatchObject({ status: 'committed', operations: 2, dispatched: 2 });
      const { out, into } = await migrationOps(office.vmId);
      expect(out).toMatchObject({ hostId: office.hostId, generation: 4, idempotencyKey: `${into.idempotencyKey}.out`, params: { targetUri: 'qemu+ssh://root@10.0.0.2/system', live: true, migrationUri: 'tcp://10.0.0.2' } });
      expect(into).toMatchObject({ hostId: office.targetId, generation: 4, params: { sourceHostId: office.hostId, migrateOutKey: out.idempotencyKey } });
      const vm = await s.prisma.desktopVm.findUniqueOrThrow({ where: { id: office.vmId } });
      expect(vm).toMatchObject({ state: 'MIGRATING', currentHostId: office.targetId, sourceHostId: office.hostId, fencingGeneration: 4 });
      const [outFrame] = await eventually(() => atSource.frames.length > 0 && atSource.frames, 'migrate-out on the source');
      const [inFrame] = await eventually(() => atTarget.frames.length > 0 && atTarget.frames, 'migrate-in on the target');
      expect(outFrame).toMatchObject({ kind: 'migrate-out', target: { vmId: office.vmId, domainName: office.vmName, generation: 4 } });
      expect(inFrame).toMatchObject({ kind: 'migrate-in', target: { vmId: office.vmId, generation: 4 } });
      // An agent reconnecting gets its half again until it is answered or the pair settles.
      expect((await pendingCommandsForHost(s.prisma, office.hostId)).map((f) => f.kind)).toEqual(['migrate-out']);
    } finally {
      atSource.stop();
      atTarget.stop();
    }
  });

  it('both halves succeeded: the desktop runs on the target only, and neither half is sent again', async () => {
    const office = await hotDeskOffice();
    await engine().handle({ type: 'signIn', id: `signin.${office.userId}.2`, hostId: office.targetId, userId: office.userId });
    const { out, into } = await migrationOps(office.vmId);
    expect(await answer(out.idempotencyKey, 'succeeded', 'ok-out')).toMatchObject({ status: 'ignored' });
    expect(await s.prisma.desktopVm.findUniqueOrThrow({ where: { id: office.vmId } })).toMatchObject({ state: 'MIGRATING' });
    expect(await answer(into.idempotencyKey, 'succeeded', 'ok-in')).toMatchObject({ status: 'committed' });
    const vm = await s.prisma.desktopVm.findUniqueOrThrow({ where: { id: office.vmId } });
    expect(vm).toMatchObject({ state: 'RUNNING', currentHostId: office.targetId, sourceHostId: null });
    expect(await pendingCommandsForHost(s.prisma, office.hostId)).toEqual([]);
    expect(await pendingCommandsForHost(s.prisma, office.targetId)).toEqual([]);
  });

  it('a failed migrate-out keeps the desktop on the source at once; the late NOT_ARRIVED changes nothing', async () => {
    const office = await hotDeskOffice();
    await engine().handle({ type: 'signIn', id: `signin.${office.userId}.3`, hostId: office.targetId, userId: office.userId });
    const { out, into } = await migrationOps(office.vmId);
    expect(await answer(out.idempotencyKey, 'failed', 'bad-out')).toMatchObject({ status: 'committed' });
    const vm = await s.prisma.desktopVm.findUniqueOrThrow({ where: { id: office.vmId } });
    expect(vm).toMatchObject({ state: 'RUNNING', currentHostId: office.hostId, sourceHostId: null });
    expect((await s.prisma.operation.findUniqueOrThrow({ where: { id: into.id } })).settledAt).not.toBeNull();
    const late = await answer(into.idempotencyKey, 'failed', 'late-in');
    expect(late).toMatchObject({ status: 'committed', transitions: 0 });
    expect(await s.prisma.desktopVm.findUniqueOrThrow({ where: { id: office.vmId } })).toMatchObject({ state: 'RUNNING', currentHostId: office.hostId });
  });

  it('a target that never saw the desktop arrive keeps it on the source, and the unanswered migrate-out is never sent again', async () => {
    const office = await hotDeskOffice();
    await engine().handle({ type: 'signIn', id: `signin.${office.userId}.4`, hostId: office.targetId, userId: office.userId });
    const { into } = await migrationOps(office.vmId);
    // The source PC is away: its half was never answered when the target gives up.
    expect(await answer(into.idempotencyKey, 'failed', 'timeout-in')).toMatchObject({ status: 'committed' });
    expect(await s.prisma.desktopVm.findUniqueOrThrow({ where: { id: office.vmId } })).toMatchObject({ state: 'RUNNING', currentHostId: office.hostId });
    expect(await pendingCommandsForHost(s.prisma, office.hostId)).toEqual([]);
  });

  it('without a migration URI advertised by the target, no half is sent', async () => {
    const office = await hotDeskOffice();
    await s.prisma.host.update({ where: { id: office.targetId }, data: { inventory: {} } });
    const outcome = await engine().handle({ type: 'signIn', id: `signin.${office.userId}.5`, hostId: office.targetId, userId: office.userId });
    expect(outcome).toMatchObject({ status: 'committed', dispatched: 0 });
    expect(await s.prisma.operation.count({ where: { vmId: office.vmId, kind: 'migrate-out' } })).toBe(0);
  });
});
