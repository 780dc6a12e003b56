// After a change commits, the scheduler is told (job submitted/cancelled, pin changed); a
// notifier that fails does not fail the request, because the database already holds the change.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SchedulerNotifier } from '../src/notifier.js';
import { errorOf, MISSING_ID, startHarness, type Harness } from './helpers.js';

class RecordingNotifier implements SchedulerNotifier {
  readonly events: unknown[] = [];
  failing = false;
  private async record(e: unknown) {
    if (this.failing) throw new Error('redis is down');
    this.events.push(e);
  }
  publishJobSubmitted(p: { jobId: string }) {
    return this.record({ type: 'jobSubmitted', ...p });
  }
  publishJobCancelled(p: { jobId: string }) {
    return this.record({ type: 'jobCancelled', ...p });
  }
  publishPin(p: { vmId: string; pinned: boolean; requestId: string }) {
    return this.record({ type: 'pin', ...p });
  }
  publishHostFenced(p: { hostId: string; requestId: string }) {
    return this.record({ type: 'hostFenced', ...p });
  }
}

const notifier = new RecordingNotifier();
let h: Harness;
let vmId: string;
let poolId: string;
beforeAll(async () => {
  h = await startHarness({ scheduler: notifier });
  const pool = await h.db.prisma.pool.create({ data: { name: 'p', timeZone: 'UTC' } });
  poolId = pool.id;
  vmId = (await h.db.prisma.desktopVm.create({ data: { name: 'dpt-n', ownerUserId: h.users.alice, poolId: pool.id, vcpus: 1, memoryMiB: 512, maxVcpus: 1, maxMemoryMiB: 512, diskLocation: '/x' } })).id;
});
afterAll(async () => {
  await h.close();
});

describe('scheduler notifications', () => {
  it('announces a submitted job and its cancellation once', async () => {
    notifier.events.length = 0;
    const job = (await h.call(h.tokens.submitter, { method: 'POST', url: '/api/v1/jobs', payload: { name: 'n', command: ['true'] } })).json() as { id: string };
    await h.call(h.tokens.submitter, { method: 'POST', url: `/api/v1/jobs/${job.id}/cancel` });
    await h.call(h.tokens.submitter, { method: 'POST', url: `/api/v1/jobs/${job.id}/cancel` });
    expect(notifier.events).toEqual([
      { type: 'jobSubmitted', jobId: job.id },
      { type: 'jobCancelled', jobId: job.id },
    ]);
  });

  it('announces each real pin change with a distinct request id', async () => {
    notifier.events.length = 0;
    await h.call(h.tokens.user, { method: 'POST', url: `/api/v1/vms/${vmId}/pin` });
    await h.call(h.tokens.user, { method: 'POST', url: `/api/v1/vms/${vmId}/pin` });
    await h.call(h.tokens.user, { method: 'POST', url: `/api/v1/vms/${vmId}/unpin` });
    expect(notifier.events).toEqual([
      { type: 'pin', vmId, pinned: true, requestId: 'v2' },
      { type: 'pin', vmId, pinned: false, requestId: 'v3' },
    ]);
  });

  it('still answers and keeps the change when the notifier fails', async () => {
    notifier.failing = true;
    try {
      const res = await h.call(h.tokens.submitter, { method: 'POST', url: '/api/v1/jobs', payload: { name: 'kept', command: ['true'] } });
      expect(res.statusCode).toBe(201);
      expect(await h.db.prisma.batchJob.findUnique({ where: { id: (res.json() as { id: string }).id } })).not.toBeNull();
    } finally {
      notifier.failing = false;
    }
  });
});

describe('fence confirmation', () => {
  it('hands an admin\'s "this PC is off" to the scheduler, audited, only for offline hosts', async () => {
    notifier.events.length = 0;
    const online = await h.db.prisma.host.create({ data: { name: 'pc-on', poolId, onlineState: 'online' } });
    const refused = await h.call(h.tokens.admin, { method: 'POST', url: `/api/v1/hosts/${online.id}/fence` });
    expect(refused.statusCode).toBe(409);
    expect(errorOf(refused).code).toBe('CONFLICT');

    const off = await h.db.prisma.host.create({ data: { name: 'pc-off', poolId, onlineState: 'offline' } });
    const res = await h.call(h.tokens.admin, { method: 'POST', url: `/api/v1/hosts/${off.id}/fence` });
    expect(res.statusCode).toBe(202);
    const event = await h.db.prisma.auditEvent.findFirstOrThrow({ where: { entityId: off.id, action: 'fence-confirmed' } });
    expect(notifier.events).toEqual([{ type: 'hostFenced', hostId: off.id, requestId: `audit${event.id}` }]);

    expect((await h.call(h.tokens.admin, { method: 'POST', url: `/api/v1/hosts/${MISSING_ID}/fence` })).statusCode).toBe(404);
    expect((await h.call(h.tokens.user, { method: 'POST', url: `/api/v1/hosts/${off.id}/fence` })).statusCode).toBe(403);
    expect((await h.call(h.tokens.submitter, { method: 'POST', url: `/api/v1/hosts/${off.id}/fence` })).statusCode).toBe(403);
  });

  it('answers 503 when the scheduler cannot be told, so the admin retries', async () => {
    const off = await h.db.prisma.host.create({ data: { name: 'pc-off-2', poolId } });
    notifier.failing = true;
    try {
      const res = await h.call(h.tokens.admin, { method: 'POST', url: `/api/v1/hosts/${off.id}/fence` });
      expect(res.statusCode).toBe(503);
      expect(errorOf(res).code).toBe('SERVICE_UNAVAILABLE');
    } finally {
      notifier.failing = false;
    }
  });
});
