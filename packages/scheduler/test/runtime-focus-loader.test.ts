// loadFocusedSnapshot reads from PostgreSQL exactly focusSnapshot of what loadSnapshot reads for
// the whole pool: the same entities, versions and names, for presence and sign-in alike.
import { randomBytes } from 'node:crypto';
import type { PrismaClient } from '@deskpool/db';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { focusSnapshot, type FocusedEvent } from '../src/runtime/focus.js';
import { undispatchedOfEvent } from '../src/runtime/dispatch.js';
import { loadFocusedSnapshot, loadSnapshot, type LoadedSnapshot } from '../src/runtime/snapshot.js';
import { SchedulerEngine } from '../src/runtime/engine.js';
import { eventually, listenForCommands, startServices, type TestServices } from './runtime-fixtures.js';

let s: TestServices;
beforeAll(async () => {
  s = await startServices();
});
afterAll(async () => {
  await s?.close();
});

const SPEC = { name: 'crunch', command: ['true'], cores: 2, memoryMiB: 2048, taskCount: 2, checkpointable: true };

/** A pool of four PCs and a second pool, with desktops, batch and operations spread over them. */
async function seed(prisma: PrismaClient) {
  const n = randomBytes(3).toString('hex');
  const pool = await prisma.pool.create({ data: { name: `focus-${n}`, timeZone: 'UTC', storageMode: 'local' } });
  const other = await prisma.pool.create({ data: { name: `focus-other-${n}`, timeZone: 'UTC' } });
  const user = (name: string, poolId = pool.id) => prisma.user.create({ data: { name: `${name}-${n}`, poolId, arrivals: [new Date(Date.UTC(2026, 10, 16, 8, 30))] } });
  const [ann, bob, cat, dan] = [await user('ann'), await user('bob'), await user('cat'), await user('dan', other.id)];
  const host = (name: string, ownerUserId: string | null, poolId = pool.id, extra: object = {}) =>
    prisma.host.create({
      data: { name: `${name}-${n}`, poolId, ownerUserId, cores: 8, memoryMiB: 16384, diskGiB: 256, onlineState: 'online', presenceState: 'idle', presenceSince: new Date(), lastHeartbeatAt: new Date(), ...extra },
    });
  const h1 = await host('h1', ann.id, pool.id, { mac: `52:54:00:${n.slice(0, 2)}:${n.slice(2, 4)}:${n.slice(4, 6)}`, inventory: { hypervisor: { migrationUri: 'qemu+ssh://h1/system' } } });
  const h2 = await host('h2', bob.id);
  const h3 = await host('h3', null);
  const h4 = await host('h4', cat.id);
  const hx = await host('hx', dan.id, other.id);
  const vm = (name: string, ownerUserId: string, data: object, poolId = pool.id) =>
    prisma.desktopVm.create({ data: { name: `dpt-${name}-${n}`, ownerUserId, poolId, vcpus: 2, memoryMiB: 4096, maxVcpus: 4, maxMemoryMiB: 8192, diskLocation: `/var/lib/deskpool/disks/${name}.qcow2`, fencingGeneration: 2, ...data } });
  // Ann's desktop is suspended on h2 (she works at h1); her second desktop is stopped.
  const annVm = await vm('ann', ann.id, { state: 'SUSPENDED', savedStateHostId: h2.id, savedStatePath: '/var/lib/deskpool/saved/ann.save' });
  await vm('ann2', ann.id, { state: 'STOPPED' });
  // Bob's desktop runs on h1 (hot-desked there yesterday); cat's migrates from h3 to h4.
  await vm('bob', bob.id, { state: 'RUNNING', currentHostId: h1.id });
  await vm('cat', cat.id, { state: 'MIGRATING', currentHostId: h4.id, sourceHostId: h3.id });
  await vm('dan', dan.id, { state: 'RUNNING', currentHostId: hx.id }, other.id);
  const job = await prisma.batchJob.create({ data: { name: 'crunch', submittedBy: 'user:test', poolId: pool.id, spec: SPEC, taskCount: 2, state: 'running' } });
  const jobElsewhere = await prisma.batchJob.create({ data: { name: 'crunch2', submittedBy: 'user:test', poolId: null, spec: SPEC, taskCount: 1, state: 'running' } });
  const t1 = await prisma.batchTask.create({ data: { jobId: job.id, index: 0, state: 'running', hostId: h1.id } });
  await prisma.batchTask.create({ data: { jobId: job.id, index: 1, state: 'running', hostId: h3.id } });
  await prisma.batchTask.create({ data: { jobId: jobElsewhere.id, index: 0, state: 'checkpointing', hostId: h1.id } });
  const op = (hostId: string, key: string, planned: object, settledAt: Date | null = null) =>
    prisma.operation.create({ data: { idempotencyKey: `${key}-${n}`, hostId, kind: 'noop', generation: 1, planned, settledAt } });
  await op(h1.id, 'op-h1', { type: 'checkpointBatch', subject: { kind: 'task', id: t1.id } });
  await op(h2.id, 'op-h2', { type: 'sleepHost', subject: { kind: 'host', id: h2.id } });
  await op(h3.id, 'op-h3', { type: 'wakeHost', subject: { kind: 'host', id: h4.id } });
  await op(h1.id, 'op-h1-settled', { type: 'sleepHost', subject: { kind: 'host', id: h1.id } }, new Date());
  // What an interrupted run of event `unsentEvent` committed and never sent, in send order.
  const unsentEvent = `ev-unsent-${n}`;
  const cause = { eventId: unsentEvent, event: 'presence', rule: 'desktop.presenceWins' };
  await prisma.operation.create({ data: { idempotencyKey: `${unsentEvent}/a`, hostId: h1.id, vmId: annVm.id, kind: 'restore', generation: 3, params: {}, planned: { type: 'restoreDesktop', subject: { kind: 'vm', id: annVm.id }, cause }, createdAt: new Date(Date.now() - 2000) } });
  await prisma.operation.create({ data: { idempotencyKey: `${unsentEvent}/b`, hostId: h2.id, kind: 'sleep', generation: 0, params: {}, planned: { type: 'sleepHost', subject: { kind: 'host', id: h2.id }, cause }, createdAt: new Date(Date.now() - 1000) } });
  return { pool, ann, bob, cat, h1, h2, h3, h4, unsentEvent };
}

/** What a plan and its commit can see of a loaded snapshot. */
function visible(loaded: LoadedSnapshot, ids: { vms: string[]; hosts: string[]; tasks: string[] }) {
  return {
    snapshot: loaded.snapshot,
    versions: Object.fromEntries(Object.entries(loaded.versions).map(([k, m]) => [k, Object.fromEntries([...m].filter(([id]) => id in (loaded.snapshot as unknown as Record<string, Record<string, unknown>>)[k]!))])),
    vmNames: ids.vms.map((id) => loaded.names.vmName(id)),
    vmSpecs: ids.vms.map((id) => loaded.names.vmDomainSpec?.(id)),
    footprints: ids.vms.map((id) => loaded.names.vmFootprint(id)),
    hostNames: ids.hosts.map((id) => loaded.names.hostName(id)),
    macs: ids.hosts.map((id) => loaded.names.hostMac(id)),
    migration: ids.hosts.map((id) => loaded.names.hostMigrationTarget?.(id)),
    boots: ids.tasks.map((id) => loaded.names.taskBoot?.(id)),
  };
}

describe('loadFocusedSnapshot', () => {
  it('reads what focusSnapshot keeps of the whole pool, for presence and for sign-in', async () => {
    const o = await seed(s.prisma);
    const events: FocusedEvent[] = [
      { hostId: o.h1.id, userId: null },
      { hostId: o.h3.id, userId: null },
      { hostId: o.h4.id, userId: null },
      { hostId: o.h3.id, userId: o.bob.id },
      { hostId: o.h2.id, userId: o.cat.id },
    ];
    for (const event of events) {
      const [focused, whole] = await s.prisma.$transaction(async (tx) => [await loadFocusedSnapshot(tx, o.pool.id, event), await loadSnapshot(tx, { poolIds: [o.pool.id] })] as const);
      expect(focused).not.toBeNull();
      const expected = focusSnapshot(whole.snapshot, event);
      // The focus is real: less than the pool.
      expect(Object.keys(expected.hosts).length).toBeLessThan(Object.keys(whole.snapshot.hosts).length);
      const ids = { vms: Object.keys(expected.vms), hosts: Object.keys(expected.hosts), tasks: Object.keys(expected.tasks) };
      const wholeSubset: LoadedSnapshot = { ...whole, snapshot: expected };
      expect(visible(focused!, ids)).toEqual(visible(wholeSubset, ids));
    }
  });

  it('reads, with the event id, what an interrupted run of that event left unsent, as undispatchedOfEvent does', async () => {
    const o = await seed(s.prisma);
    const [focused, unsent] = await s.prisma.$transaction(async (tx) => [await loadFocusedSnapshot(tx, o.pool.id, { hostId: o.h1.id, userId: null }, o.unsentEvent), await undispatchedOfEvent(tx, o.unsentEvent)] as const);
    expect(unsent.map((d) => d.idempotencyKey)).toEqual([`${o.unsentEvent}/a`, `${o.unsentEvent}/b`]);
    expect(focused?.unsentOfEvent).toEqual(unsent);
    const none = await s.prisma.$transaction((tx) => loadFocusedSnapshot(tx, o.pool.id, { hostId: o.h1.id, userId: null }, 'ev-with-nothing-left'));
    expect(none?.unsentOfEvent).toEqual([]);
  });

  it('gives up (null: read the whole pool) when a saved state waits on a sleeping PC, or the PC is in another pool', async () => {
    const o = await seed(s.prisma);
    await s.prisma.host.update({ where: { id: o.h2.id }, data: { asleep: true } });
    const focused = await s.prisma.$transaction((tx) => loadFocusedSnapshot(tx, o.pool.id, { hostId: o.h1.id, userId: null }));
    expect(focused).toBeNull();
    const whole = await loadSnapshot(s.prisma, { poolIds: [o.pool.id] });
    expect(focusSnapshot(whole.snapshot, { hostId: o.h1.id, userId: null })).toBe(whole.snapshot);
    const otherPool = await s.prisma.pool.create({ data: { name: `focus-empty-${randomBytes(3).toString('hex')}`, timeZone: 'UTC' } });
    expect(await s.prisma.$transaction((tx) => loadFocusedSnapshot(tx, otherPool.id, { hostId: o.h3.id, userId: null }))).toBeNull();
  });

  it('a presence takes the same pool lock as every other event of the pool: it waits while another holds it', async () => {
    const o = await seed(s.prisma);
    const engine = new SchedulerEngine({ prisma: s.prisma, redis: s.redis, channelPrefix: s.channelPrefix });
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => (locked = r));
    // Another event of the pool, holding the pool's lock as lockPools takes it.
    const other = s.prisma.$transaction(
      async (tx) => {
        await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${`deskpool:pool:${o.pool.id}`}, 0))`;
        locked();
        await held;
      },
      { timeout: 60_000 },
    );
    await isLocked;
    let done = false;
    const handled = engine.handle({ type: 'presence', id: `focus-lock-${o.h3.id}`, hostId: o.h3.id, presence: 'present' }).finally(() => (done = true));
    await eventually(async () => (await s.prisma.$queryRaw<{ n: number }[]>`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`)[0]!.n > 0, 'the presence to wait for the pool lock');
    expect(done).toBe(false);
    release();
    await other;
    expect(await handled).toMatchObject({ status: 'committed' });
    expect((await s.prisma.host.findUniqueOrThrow({ where: { id: o.h3.id } })).presenceState).toBe('present');
  });

  it('a presence whose run died between commit and publish has its commands published by the next run', async () => {
    const o = await seed(s.prisma);
    const crashing = new SchedulerEngine({ prisma: s.prisma, redis: s.redis, channelPrefix: s.channelPrefix, afterCommit: () => { throw new Error('worker died after the commit'); } });
    const eventId = `focus-crash-${o.h4.id}`;
    await s.prisma.host.update({ where: { id: o.h4.id }, data: { presenceState: 'idle' } });
    await s.prisma.desktopVm.updateMany({ where: { ownerUserId: o.cat.id }, data: { state: 'SUSPENDED', currentHostId: null, sourceHostId: null, savedStateHostId: o.h4.id, savedStatePath: '/var/lib/deskpool/saved/cat.save' } });
    await expect(crashing.handle({ type: 'presence', id: eventId, hostId: o.h4.id, presence: 'present' })).rejects.toThrow('worker died');
    const committed = await undispatchedOfEvent(s.prisma, eventId);
    expect(committed.map((d) => [d.type, d.hostId])).toEqual([['restoreDesktop', o.h4.id]]);

    const listener = await listenForCommands(s, o.h4.id);
    const engine = new SchedulerEngine({ prisma: s.prisma, redis: s.redis, channelPrefix: s.channelPrefix });
    expect(await engine.handle({ type: 'presence', id: eventId, hostId: o.h4.id, presence: 'present' })).toMatchObject({ status: 'committed', operations: 0, dispatched: 1 });
    await eventually(() => listener.frames.length > 0, 'the restore to be published');
    listener.stop();
    expect(listener.frames).toEqual([expect.objectContaining({ type: 'command', idempotencyKey: committed[0]!.idempotencyKey, kind: 'restore' })]);
    expect((await s.prisma.operation.findUniqueOrThrow({ where: { id: committed[0]!.operationId } })).status).toBe('sent');
  });

  it('ignores a presence of a PC that does not exist (or whose id is not one), and plans nothing for a sign-in of nobody', async () => {
    const engine = new SchedulerEngine({ prisma: s.prisma, redis: s.redis, channelPrefix: s.channelPrefix });
    expect(await engine.handle({ type: 'presence', id: 'focus-missing-1', hostId: '00000000-0000-4000-8000-000000000000', presence: 'present' })).toMatchObject({ status: 'ignored' });
    expect(await engine.handle({ type: 'presence', id: 'focus-missing-2', hostId: 'not-a-uuid', presence: 'idle' })).toMatchObject({ status: 'ignored' });
    const o = await seed(s.prisma);
    expect(await engine.handle({ type: 'signIn', id: 'focus-missing-3', hostId: o.h3.id, userId: 'nobody' })).toMatchObject({ status: 'committed', operations: 0 });
  });
});
