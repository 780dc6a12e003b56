// GET /metrics on real PostgreSQL and Redis: the scrape parses as Prometheus text, fleet gauges
// reflect the rows in the database, queue depths the scheduler's BullMQ queue, and the
// histograms what agents report over a real WebSocket.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { DeskpoolMetrics } from '../src/metrics/index.js';
import { generateSecret, hashSecret, SECRET_PREFIX } from '../src/secrets.js';
import { addHost, connectAgent, parsePrometheus, startDashboardApi, valueOf, type DashboardApi } from './dashboard-harness.js';

let api: DashboardApi;
let ownerId: string;

beforeAll(async () => {
  api = await startDashboardApi();
  ownerId = (await api.db.prisma.user.create({ data: { name: 'olga' } })).id;
}, 60_000);

afterAll(async () => {
  await api?.close();
});

async function scrape(token: string | null = api.adminToken): Promise<Response> {
  return fetch(`${api.url}/metrics`, token === null ? {} : { headers: { authorization: `Bearer ${token}` } });
}

async function samples() {
  const res = await scrape();
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheus(await res.text());
}

describe('GET /metrics', () => {
  it('needs an admin token', async () => {
    expect((await scrape(null)).status).toBe(401);
    const userToken = generateSecret(SECRET_PREFIX.apiToken);
    await api.db.prisma.apiToken.create({ data: { name: 'olga-laptop', role: 'user', userId: ownerId, tokenHash: hashSecret(userToken) } });
    const res = await scrape(userToken);
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('FORBIDDEN');
  });

  it('counts hosts, presence, desktops, tasks and jobs from the database, zero for states nobody is in', async () => {
    const { types, samples: before } = await samples();
    expect(types.get('deskpool_hosts')).toBe('gauge');
    expect(types.get('deskpool_operation_duration_seconds')).toBe('histogram');
    expect(types.get('deskpool_tap_to_desktop_seconds')).toBe('histogram');
    expect(valueOf(before, 'deskpool_hosts', { state: 'online' })).toBe(0);
    expect(valueOf(before, 'deskpool_vms', { state: 'LOST' })).toBe(0);

    await addHost(api, { name: `on-${randomUUID().slice(0, 6)}`, onlineState: 'online', presenceState: 'present' });
    await addHost(api, { name: `on-${randomUUID().slice(0, 6)}`, onlineState: 'online', presenceState: 'idle' });
    const off = await addHost(api, { name: `off-${randomUUID().slice(0, 6)}`, onlineState: 'offline' });
    await addHost(api, { name: `zz-${randomUUID().slice(0, 6)}`, onlineState: 'offline', asleep: true, presenceState: 'idle' });
    for (const [i, state] of (['RUNNING', 'SUSPENDED', 'SUSPENDED'] as const).entries()) {
      await api.db.prisma.desktopVm.create({ data: { name: `dpt-m-${i}-${randomUUID().slice(0, 6)}`, ownerUserId: ownerId, poolId: api.poolId, vcpus: 2, memoryMiB: 2048, maxVcpus: 2, maxMemoryMiB: 2048, diskLocation: '/d', state } });
    }
    const job = await api.db.prisma.batchJob.create({ data: { name: 'render', submittedBy: 'token:t', spec: { cores: 2 }, taskCount: 3, state: 'running' } });
    await api.db.prisma.batchTask.createMany({
      data: [
        { jobId: job.id, index: 0, state: 'running', hostId: off.hostId },
        { jobId: job.id, index: 1, state: 'queued' },
        { jobId: job.id, index: 2, state: 'succeeded' },
      ],
    });

    const { samples: after } = await samples();
    expect(valueOf(after, 'deskpool_hosts', { state: 'online' })).toBe(2);
    expect(valueOf(after, 'deskpool_hosts', { state: 'offline' })).toBe(1);
    expect(valueOf(after, 'deskpool_hosts', { state: 'asleep' })).toBe(1);
    expect(valueOf(after, 'deskpool_hosts_presence', { presence: 'present' })).toBe(1);
    expect(valueOf(after, 'deskpool_hosts_presence', { presence: 'idle' })).toBe(2);
    expect(valueOf(after, 'deskpool_hosts_presence', { presence: 'unknown' })).toBe(1);
    expect(valueOf(after, 'deskpool_vms', { state: 'RUNNING' })).toBe(1);
    expect(valueOf(after, 'deskpool_vms', { state: 'SUSPENDED' })).toBe(2);
    expect(valueOf(after, 'deskpool_batch_tasks', { state: 'running' })).toBe(1);
    expect(valueOf(after, 'deskpool_batch_tasks', { state: 'queued' })).toBe(1);
    expect(valueOf(after, 'deskpool_batch_tasks', { state: 'succeeded' })).toBe(1);
    expect(valueOf(after, 'deskpool_batch_jobs', { state: 'running' })).toBe(1);
  });

  it("reports the depth of the scheduler's event queue", async () => {
    const depth = async () => valueOf((await samples()).samples, 'deskpool_queue_jobs', { queue: 'events', state: 'prioritized' });
    expect(await depth()).toBe(0);
    expect(valueOf((await samples()).samples, 'deskpool_queue_jobs', { queue: 'events-dead-letter', state: 'waiting' })).toBe(0);
    await api.schedulerEvents.publishJobSubmitted({ jobId: randomUUID() });
    await api.schedulerEvents.publishJobSubmitted({ jobId: randomUUID() });
    expect(await depth()).toBe(2);
  });

  it('observes command durations and the wait from a tap to a desktop running, from a real agent connection', async () => {
    const pc = await addHost(api, { name: `tap-${randomUUID().slice(0, 6)}`, ownerUserId: ownerId });
    const vm = await api.db.prisma.desktopVm.create({ data: { name: `dpt-tap-${randomUUID().slice(0, 6)}`, ownerUserId: ownerId, poolId: api.poolId, vcpus: 2, memoryMiB: 2048, maxVcpus: 2, maxMemoryMiB: 2048, diskLocation: '/d', state: 'SUSPENDED' } });
    const agent = await connectAgent(api, pc.credential);
    try {
      expect(valueOf((await samples()).samples, 'deskpool_agent_connections')).toBe(1);

      // Tap: nothing runs at this PC yet, so the wait lasts until the restore is answered.
      await agent.send({ type: 'presence', state: 'present', idleSince: null, source: 'evdev' });
      await api.db.prisma.operation.create({ data: { idempotencyKey: 'op-restore-tap-1', hostId: pc.hostId, vmId: vm.id, kind: 'restore', generation: 1, status: 'sent', sentAt: new Date(Date.now() - 1500) } });
      await agent.send({ type: 'op-result', idempotencyKey: 'op-restore-tap-1', outcome: 'succeeded', replayed: false });
      await agent.send({ type: 'op-result', idempotencyKey: 'op-restore-tap-1', outcome: 'succeeded', replayed: true }); // a re-sent copy counts once

      await expect.poll(async () => valueOf((await samples()).samples, 'deskpool_tap_to_desktop_seconds_count')).toBe(1);
      let s = (await samples()).samples;
      expect(valueOf(s, 'deskpool_operation_duration_seconds_count', { kind: 'restore', outcome: 'succeeded' })).toBe(1);
      expect(valueOf(s, 'deskpool_operation_duration_seconds_sum', { kind: 'restore', outcome: 'succeeded' })).toBeGreaterThanOrEqual(1.5);
      expect(valueOf(s, 'deskpool_operation_duration_seconds_bucket', { kind: 'restore', outcome: 'succeeded', le: '1' })).toBe(0);
      expect(valueOf(s, 'deskpool_tap_to_desktop_seconds_bucket', { le: '0.001' })).toBe(0);

      // The person leaves and comes back while the desktop runs: an instant morning.
      await api.db.prisma.desktopVm.update({ where: { id: vm.id }, data: { state: 'RUNNING', currentHostId: pc.hostId } });
      await agent.send({ type: 'presence', state: 'idle', idleSince: new Date().toISOString(), source: 'evdev' });
      await agent.send({ type: 'presence', state: 'present', idleSince: null, source: 'evdev' });
      await expect.poll(async () => valueOf((await samples()).samples, 'deskpool_tap_to_desktop_seconds_count')).toBe(2);
      s = (await samples()).samples;
      expect(valueOf(s, 'deskpool_tap_to_desktop_seconds_bucket', { le: '0.001' })).toBe(1);

      // A failed command is its own series; it ends no wait.
      await api.db.prisma.operation.create({ data: { idempotencyKey: 'op-suspend-fail-1', hostId: pc.hostId, vmId: vm.id, kind: 'suspend', generation: 2, status: 'sent', sentAt: new Date() } });
      await agent.send({ type: 'op-result', idempotencyKey: 'op-suspend-fail-1', outcome: 'failed', replayed: false, error: { code: 'AGENT_ERROR', message: 'disk full' } });
      await expect.poll(async () => valueOf((await samples()).samples, 'deskpool_operation_duration_seconds_count', { kind: 'suspend', outcome: 'failed' })).toBe(1);
    } finally {
      await agent.close();
    }
    await expect.poll(async () => valueOf((await samples()).samples, 'deskpool_agent_connections')).toBe(0);
  });

  it('still answers with Redis unreachable: the database series, no queue depths, and which source is down', async () => {
    // Nothing listens on port 1: every command fails at once.
    const deadRedis = new Redis('redis://127.0.0.1:1', { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
    deadRedis.on('error', () => undefined);
    const metrics = new DeskpoolMetrics({ prisma: api.db.prisma, redis: deadRedis, cacheMs: 0, processMetrics: false });
    try {
      const { samples: s } = parsePrometheus(await metrics.scrape());
      expect(valueOf(s, 'deskpool_metrics_source_up', { source: 'postgres' })).toBe(1);
      expect(valueOf(s, 'deskpool_metrics_source_up', { source: 'redis' })).toBe(0);
      expect(valueOf(s, 'deskpool_hosts', { state: 'online' })).toBeGreaterThanOrEqual(0);
      expect(s.filter((x) => x.name === 'deskpool_queue_jobs')).toEqual([]);
    } finally {
      await metrics.close();
      deadRedis.disconnect();
    }
  });
});
