// The dashboard's page and read-only endpoints on real PostgreSQL and Redis: PCs classified
// from the rows, queue counts, the timeline written by the sampler, and the change feed
// pushing a PC's new state as server-sent events.
import { randomUUID } from 'node:crypto';
import { recordAudit } from '@deskpool/db';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyPc, FleetSampler, type HostFacts } from '../src/dashboard/index.js';
import { buildTimeline } from '../src/dashboard/timeline.js';
import { generateSecret, hashSecret, SECRET_PREFIX } from '../src/secrets.js';
import { addHost, startDashboardApi, type DashboardApi } from './dashboard-harness.js';

let api: DashboardApi;
let userToken: string;
const ids: Record<string, string> = {};

const get = (path: string, token: string | null = api.adminToken, headers: Record<string, string> = {}) =>
  fetch(`${api.url}${path}`, { headers: { ...headers, ...(token !== null && { authorization: `Bearer ${token}` }) } });

async function vm(owner: string, state: string, hostId: string | null) {
  return api.db.prisma.desktopVm.create({ data: { name: `dpt-d-${randomUUID().slice(0, 8)}`, ownerUserId: owner, poolId: api.poolId, vcpus: 2, memoryMiB: 2048, maxVcpus: 2, maxMemoryMiB: 2048, diskLocation: '/d', state: state as 'RUNNING', currentHostId: hostId } });
}

beforeAll(async () => {
  api = await startDashboardApi({ dashboard: { feedPollMs: 100 } });
  const p = api.db.prisma;
  const user = async (name: string) => (await p.user.create({ data: { name } })).id;
  userToken = generateSecret(SECRET_PREFIX.apiToken);
  await p.apiToken.create({ data: { name: 'u', role: 'user', userId: await user('someone'), tokenHash: hashSecret(userToken) } });
  // One PC per state.
  ids.asleep = (await addHost(api, { name: 'pc-asleep', asleep: true, onlineState: 'offline' })).hostId;
  ids.offline = (await addHost(api, { name: 'pc-offline', onlineState: 'offline', presenceState: 'present' })).hostId;
  const ann = await user('ann');
  ids.present = (await addHost(api, { name: 'pc-present', onlineState: 'online', presenceState: 'present', ownerUserId: ann })).hostId;
  await vm(ann, 'RUNNING', ids.present);
  const bob = await user('bob');
  ids.moving = (await addHost(api, { name: 'pc-moving', onlineState: 'online', presenceState: 'idle', ownerUserId: bob })).hostId;
  await vm(bob, 'RESTORING', ids.moving);
  const cat = await user('cat');
  ids.batch = (await addHost(api, { name: 'pc-batch', onlineState: 'online', presenceState: 'idle', ownerUserId: cat })).hostId;
  await vm(cat, 'SUSPENDED', null);
  const job = await p.batchJob.create({ data: { name: 'sim', submittedBy: 'token:t', spec: { cores: 4 }, taskCount: 2, state: 'running' } });
  await p.batchTask.createMany({ data: [{ jobId: job.id, index: 0, state: 'running', hostId: ids.batch }, { jobId: job.id, index: 1, state: 'queued' }] });
  const dan = await user('dan');
  ids.idle = (await addHost(api, { name: 'pc-idle', onlineState: 'online', presenceState: 'idle', ownerUserId: dan })).hostId;
  await vm(dan, 'RUNNING', ids.idle);
  const eve = await user('eve');
  ids.suspended = (await addHost(api, { name: 'pc-suspended', onlineState: 'online', presenceState: 'idle', ownerUserId: eve })).hostId;
  await vm(eve, 'SUSPENDED', null);
  ids.free = (await addHost(api, { name: 'pc-free', onlineState: 'online', presenceState: 'unknown' })).hostId;
}, 60_000);

afterAll(async () => {
  await api?.close();
});

describe('GET /dashboard (the page)', () => {
  it('serves the page and its files without a token, with a strict content security policy', async () => {
    const page = await get('/dashboard', null);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await page.text()).toContain('id="login-form"');
    const js = await get('/dashboard/dashboard.js', null);
    expect(js.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(await js.text()).toContain('text/event-stream');
    expect((await get('/dashboard/dashboard.css', null)).status).toBe(200);
  });

  it('serves nothing else from disk', async () => {
    for (const path of ['/dashboard/index.ts', '/dashboard/constructor', '/dashboard/__proto__', '/dashboard/..%2Froutes.ts', '/dashboard/%2e%2e%2f%2e%2e%2fpackage.json']) {
      const res = await get(path, null);
      expect(res.status, path).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
    }
  });
});

describe('GET /api/v1/dashboard/fleet', () => {
  it('needs an admin token', async () => {
    expect((await get('/api/v1/dashboard/fleet', null)).status).toBe(401);
    expect((await get('/api/v1/dashboard/fleet', userToken)).status).toBe(403);
  });

  it('puts every PC in the state the grid colours it by, with counts and power', async () => {
    const res = await get('/api/v1/dashboard/fleet');
    expect(res.status).toBe(200);
    const fleet = (await res.json()) as { pcs: { id: string; state: string; owner: string | null; batchCores: number; powerWatts: number }[]; counts: Record<string, number>; powerWatts: number; alwaysOnWatts: number };
    const byId = new Map(fleet.pcs.map((pc) => [pc.id, pc]));
    for (const [state, id] of Object.entries(ids)) expect(byId.get(id)?.state, state).toBe(state);
    expect(fleet.counts).toEqual({ asleep: 1, offline: 1, present: 1, moving: 1, batch: 1, idle: 1, suspended: 1, free: 1 });
    expect(byId.get(ids.present!)?.owner).toBe('ann');
    expect(byId.get(ids.batch!)?.batchCores).toBe(4);
    // 2 W asleep, 0 offline, 30 W per PC on, +15 W per desktop running or moving, +10 W per busy batch core.
    expect(byId.get(ids.batch!)?.powerWatts).toBe(70);
    expect(fleet.powerWatts).toBe(2 + 0 + 45 + 45 + 70 + 45 + 30 + 30);
    expect(fleet.alwaysOnWatts).toBe(8 * 45);
  });

  it('filters by pool and names a bad pool id', async () => {
    const other = await api.db.prisma.pool.create({ data: { name: `other-${randomUUID().slice(0, 6)}`, timeZone: 'UTC' } });
    await api.db.prisma.host.create({ data: { name: 'pc-elsewhere', poolId: other.id } });
    const only = (await (await get(`/api/v1/dashboard/fleet?poolId=${other.id}`)).json()) as { pcs: { name: string }[] };
    expect(only.pcs.map((p) => p.name)).toEqual(['pc-elsewhere']);
    const bad = await get('/api/v1/dashboard/fleet?poolId=nope');
    expect(bad.status).toBe(400);
    const body = (await bad.json()) as { error: { code: string; details: { issues: { location: string; path: string[] }[] } } };
    expect(body.error.code).toBe('VALIDATION_FAILED');
    expect(body.error.details.issues.map((i) => [i.location, ...i.path].join('.'))).toContain('query.poolId');
    expect((await get('/api/v1/dashboard/fleet?colour=red')).status).toBe(400);
  });
});

describe('GET /api/v1/dashboard/queue', () => {
  it('counts jobs and tasks by state', async () => {
    const q = (await (await get('/api/v1/dashboard/queue')).json()) as { jobs: Record<string, number>; tasks: Record<string, number> };
    expect(q.jobs).toEqual({ running: 1 });
    expect(q.tasks).toEqual({ running: 1, queued: 1 });
  });
});

describe('timeline', () => {
  it('the sampler writes one row per period on the injected clock; the endpoint derives throughput and energy', async () => {
    let now = Date.parse('2026-11-25T22:00:20Z');
    const clock = { now: () => new Date(now) };
    const sampler = new FleetSampler(api.db.prisma, clock, { periodMs: 60_000, tickMs: 0, retentionMs: 31 * 24 * 3600_000 });
    expect((await sampler.sampleNow())?.toISOString()).toBe('2026-11-25T22:00:00.000Z');
    expect(await sampler.sampleNow()).toBeNull(); // same period
    // Another process's sampler in the same period writes nothing.
    now += 10_000;
    expect(await new FleetSampler(api.db.prisma, clock, { periodMs: 60_000, tickMs: 0, retentionMs: 31 * 24 * 3600_000 }).sampleNow()).toBeNull();
    await api.db.prisma.batchTask.updateMany({ where: { state: 'running' }, data: { state: 'succeeded' } });
    now = Date.parse('2026-11-25T22:30:05Z');
    expect((await sampler.sampleNow())?.toISOString()).toBe('2026-11-25T22:30:00.000Z');

    const res = await get('/api/v1/dashboard/timeline?since=2026-11-25T21:00:00Z&until=2026-11-26T01:00:00Z');
    expect(res.status).toBe(200);
    const tl = (await res.json()) as { samples: { at: string; pcs: Record<string, number>; tasksSucceeded: number; tasksPerHour: number | null; powerWatts: number }[]; energyKWh: number; alwaysOnKWh: number };
    expect(tl.samples.map((s) => s.at)).toEqual(['2026-11-25T22:00:00.000Z', '2026-11-25T22:30:00.000Z']);
    expect(tl.samples[0]).toMatchObject({ tasksSucceeded: 0, tasksPerHour: null, pcs: { batch: 1, present: 1 } });
    expect(tl.samples[1]).toMatchObject({ tasksSucceeded: 1, tasksPerHour: 2, pcs: { batch: 0 } });
    // The first sample's power held for half an hour.
    expect(tl.energyKWh).toBeCloseTo((tl.samples[0]!.powerWatts * 0.5) / 1000, 6);
    expect(tl.alwaysOnKWh).toBeGreaterThan(tl.energyKWh);
  });

  it('names a bad range', async () => {
    const res = await get('/api/v1/dashboard/timeline?since=2026-11-26T01:00:00Z&until=2026-11-25T01:00:00Z');
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { details: { issues: { path: string[] }[] } } };
    expect(body.error.details.issues[0]?.path).toEqual(['until']);
    expect((await get('/api/v1/dashboard/timeline?since=yesterday')).status).toBe(400);
    expect((await get('/api/v1/dashboard/timeline?since=2026-01-01T00:00:00Z&until=2026-11-01T00:00:00Z')).status).toBe(400);
  });

  it('thins long timelines and keeps throughput between the points it keeps', () => {
    const samples = Array.from({ length: 10 }, (_x, i) => ({ at: new Date(Date.UTC(2026, 0, 1, 0, i * 6)), pcs: {}, powerWatts: 100, alwaysOnWatts: 200, desktopsRunning: 0, tasksRunning: 0, tasksSucceeded: i }));
    const tl = buildTimeline(samples, 4);
    expect(tl.points.map((p) => p.at.slice(11, 16))).toEqual(['00:00', '00:18', '00:36', '00:54']);
    expect(tl.points[1]?.tasksPerHour).toBeCloseTo(10, 6); // 3 tasks in 18 min
    expect(tl.energyKWh).toBeCloseTo((100 * 0.9) / 1000, 9);
  });
});

describe('classifyPc', () => {
  const base: HostFacts = { onlineState: 'online', presence: 'idle', asleep: false, batchTasks: 0, batchCores: 0, desktopsRunning: 0, desktopsMoving: 0, desktopsSuspended: 0 };
  it('lets presence win over batch work and a running desktop, and sleep over everything', () => {
    expect(classifyPc({ ...base, presence: 'present', batchTasks: 1, desktopsRunning: 1 })).toBe('present');
    expect(classifyPc({ ...base, asleep: true, onlineState: 'offline', presence: 'present' })).toBe('asleep');
    expect(classifyPc({ ...base, batchTasks: 1, desktopsRunning: 1 })).toBe('batch');
    expect(classifyPc({ ...base, desktopsSuspended: 1, desktopsRunning: 1 })).toBe('idle');
  });
});

describe('GET /api/v1/dashboard/events', () => {
  it('refuses a client that did not ask for an event stream', async () => {
    const res = await get('/api/v1/dashboard/events');
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('BAD_REQUEST');
    expect((await get('/api/v1/dashboard/events', userToken, { accept: 'text/event-stream' })).status).toBe(403);
  });

  it('pushes the new state of a PC when its change is written to the audit trail', async () => {
    const controller = new AbortController();
    const res = await fetch(`${api.url}/api/v1/dashboard/events`, { headers: { authorization: `Bearer ${api.adminToken}`, accept: 'text/event-stream' }, signal: controller.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    const nextEvent = async (): Promise<{ name: string; data: Record<string, unknown> }> => {
      for (;;) {
        const end = buffer.indexOf('\n\n');
        if (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (block.startsWith(':')) continue;
          const name = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
          return { name, data: JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? '{}') as Record<string, unknown> };
        }
        const { value, done } = await reader.read();
        if (done) throw new Error('stream ended');
        buffer += value;
      }
    };
    try {
      // hello comes once the feed knows where the audit trail ends: every later change is pushed.
      expect((await nextEvent()).name).toBe('hello');
      await api.db.prisma.$transaction(async (tx) => {
        await tx.host.update({ where: { id: ids.free! }, data: { presenceState: 'present' } });
        await recordAudit(tx, { entityType: 'host', entityId: ids.free!, action: 'presence.present', actor: 'agent:pc-free', cause: 'test' });
      });
      let change: Record<string, unknown> | undefined;
      while (!change) {
        const e = await nextEvent();
        if (e.name === 'change') change = e.data;
      }
      const pcs = change.pcs as { id: string; state: string }[];
      expect(pcs).toEqual([expect.objectContaining({ id: ids.free, state: 'present' })]);
      expect(change.touched).toEqual(['host']);
      expect((change.audit as { action: string }[]).map((a) => a.action)).toEqual(['presence.present']);
      expect((change.counts as Record<string, number>).present).toBe(2);
    } finally {
      controller.abort();
    }
  });
});
