// The SQL migration is written by hand; this writes and reads every column of every model
// through Prisma, so any mismatch between prisma/schema.prisma and the SQL fails here.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../src/testing.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db.drop();
});

describe('schema and migration agree', () => {
  it('round-trips every model with every column set', async () => {
    const p = db.prisma;
    const now = new Date('2026-11-26T10:00:00.000Z');
    const pool = await p.pool.create({
      data: {
        name: 'p', description: 'd', timeZone: 'Europe/Berlin', officeDays: [1, 2], officeHoursStart: '07:30', officeHoursEnd: '17:00',
        idleThresholdMinutes: 20, nightWindowStart: '20:00', nightWindowEnd: '06:00', batchAllowed: false, maxBatchPercentOwnerPresent: 10,
        preStaging: false, powerManagement: false, storageMode: 'shared', checkpointGraceSeconds: 30,
      },
    });
    expect(pool).toMatchObject({ officeDays: [1, 2], storageMode: 'shared', version: 1 });
    const user = await p.user.create({ data: { name: 'alice', displayName: 'Alice', poolId: pool.id, role: 'submitter' } });
    const host = await p.host.create({
      data: {
        name: 'pc-1', poolId: pool.id, ownerUserId: user.id, mac: '52:54:00:00:00:01', cores: 8, memoryMiB: 32768, diskGiB: 512, gpu: 'rtx',
        labels: ['gpu', 'ssd'], inventory: { cpuModel: 'x' }, agentVersion: '0.1.0', onlineState: 'online', presenceState: 'present',
        presenceSince: now, drained: true, lastHeartbeatAt: now, fencingEpoch: 3,
      },
    });
    expect(host).toMatchObject({ labels: ['gpu', 'ssd'], inventory: { cpuModel: 'x' }, presenceSince: now });
    await p.user.update({ where: { id: user.id }, data: { homeHostId: host.id } });
    const vm = await p.desktopVm.create({
      data: {
        name: 'dpt-vm', ownerUserId: user.id, poolId: pool.id, vcpus: 2, memoryMiB: 4096, maxVcpus: 4, maxMemoryMiB: 8192, diskGiB: 40,
        diskLocation: '/var/lib/deskpool/a.qcow2', state: 'SUSPENDED', pinned: true, pinnedUntil: now, currentHostId: null,
        savedStateHostId: host.id, savedStatePath: '/var/lib/deskpool/a.save', fencingGeneration: 7, stateChangedAt: now,
      },
    });
    expect(vm).toMatchObject({ state: 'SUSPENDED', fencingGeneration: 7, savedStateHostId: host.id });
    const job = await p.batchJob.create({
      data: {
        name: 'j', submitterUserId: user.id, submittedBy: 'user:alice', poolId: pool.id, spec: { a: 1 }, priority: 5, state: 'running',
        taskCount: 1, deadline: now, cancelRequestedAt: now, startedAt: now, finishedAt: now,
        tasks: { create: [{ index: 0, state: 'checkpointed', hostId: host.id, attempts: 2, checkpointHostId: host.id, checkpointPath: '/c', progress: 0.5, exitStatus: 0, output: 'ok', generation: 4, startedAt: now, finishedAt: now }] },
      },
      include: { tasks: true },
    });
    expect(job.tasks[0]).toMatchObject({ state: 'checkpointed', progress: 0.5, generation: 4 });
    const op = await p.operation.create({
      data: {
        idempotencyKey: 'k1', hostId: host.id, vmId: vm.id, taskId: job.tasks[0]!.id, kind: 'restore', generation: 7, params: { x: 1 },
        status: 'failed', result: { r: true }, error: 'boom', progress: 1, sentAt: now, startedAt: now, finishedAt: now,
      },
    });
    expect(op).toMatchObject({ status: 'failed', params: { x: 1 } });
    const et = await p.enrollmentToken.create({
      data: { tokenHash: 'h1', poolId: pool.id, note: 'n', createdBy: 'user:root', expiresAt: now, usedAt: now, usedByHostId: host.id, revokedAt: now },
    });
    expect(et.usedByHostId).toBe(host.id);
    const hc = await p.hostCredential.create({ data: { secretHash: 'h2', hostId: host.id, revokedAt: now } });
    expect(hc.revokedAt).toEqual(now);
    const at = await p.apiToken.create({ data: { tokenHash: 'h3', name: 't', role: 'admin', userId: user.id, revokedAt: now, lastUsedAt: now } });
    expect(at.role).toBe('admin');
    const ev = await p.auditEvent.create({ data: { entityType: 'vm', entityId: vm.id, action: 'a', actor: 'scheduler', cause: 'c', before: {}, after: { s: 1 } } });
    expect(typeof ev.id).toBe('bigint');
  });

  it('refuses a second task with the same index in one job', async () => {
    const job = await db.prisma.batchJob.create({ data: { name: 'j2', submittedBy: 'system', spec: {}, taskCount: 1, tasks: { create: [{ index: 0 }] } } });
    await expect(db.prisma.batchTask.create({ data: { jobId: job.id, index: 0 } })).rejects.toMatchObject({ code: 'P2002' });
  });
});
