// A desktop user cannot read or move another person's desktop; a submitter cannot read or touch
// another's jobs. Checked on every route of the route table that takes an id (so a route added
// later is covered), with every other principal's resources, and the database unchanged.
import type { HTTPMethods, RouteOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changedTables, databaseDigest } from './fuzz-kit.js';
import { startHarness, type Harness } from './helpers.js';

let h: Harness;
const routes: { method: HTTPMethods; url: string }[] = [];
let ids: { aliceVm: string; bobVm: string; samJob: string; sueJob: string; pool: string; host: string };

beforeAll(async () => {
  h = await startHarness({
    onRoute: (route: RouteOptions) => {
      for (const method of Array.isArray(route.method) ? route.method : [route.method]) if (method !== 'HEAD') routes.push({ method, url: route.url });
    },
  });
  const p = h.db.prisma;
  const pool = await p.pool.create({ data: { name: 'own', timeZone: 'UTC' } });
  const host = await p.host.create({ data: { name: 'own-pc', poolId: pool.id } });
  const vm = (name: string, owner: string) =>
    p.desktopVm.create({ data: { name, ownerUserId: owner, poolId: pool.id, vcpus: 1, memoryMiB: 512, maxVcpus: 2, maxMemoryMiB: 1024, diskLocation: `/d/${name}`, state: 'RUNNING', currentHostId: host.id } });
  const job = async (name: string, submitter: string) => {
    const j = await p.batchJob.create({ data: { name, submitterUserId: submitter, submittedBy: `user:${name}`, spec: { name, command: ['true'] }, taskCount: 1, state: 'running' } });
    await p.batchTask.create({ data: { jobId: j.id, index: 0, state: 'running', hostId: host.id } });
    return j.id;
  };
  ids = {
    aliceVm: (await vm('dpt-alice', h.users.alice)).id,
    bobVm: (await vm('dpt-bob', h.users.bob)).id,
    samJob: await job('sam-job', h.users.sam),
    sueJob: await job('sue-job', h.users.sue),
    pool: pool.id,
    host: host.id,
  };
});
afterAll(async () => {
  await h.close();
});

/** Every route with path parameters, each filled with `id` (and 0 for an index). */
function routesWithIds(id: string): { method: HTTPMethods; url: string; route: string }[] {
  return routes
    .filter((r) => r.url.startsWith('/api/v1/') && !r.url.startsWith('/api/v1/agent/') && /:[A-Za-z]/.test(r.url))
    .map((r) => ({ method: r.method, route: `${r.method} ${r.url}`, url: r.url.replace(/:([A-Za-z0-9_]+)/g, (_m, name: string) => (/index|seq|offset/i.test(name) ? '0' : id)) }));
}

/** Bodies that would be accepted if the caller were allowed: refusal must come from ownership, not validation. */
const PLAUSIBLE_BODY: Record<string, unknown> = { until: '2099-01-01T00:00:00.000Z' };

async function expectRefusedEverywhere(token: string, foreignIds: string[]): Promise<string[]> {
  const tried: string[] = [];
  const before = await databaseDigest(h.db);
  for (const id of foreignIds) {
    for (const r of routesWithIds(id)) {
      const res = await h.call(token, { method: r.method, url: r.url, ...(r.method === 'GET' || r.method === 'DELETE' ? {} : { payload: PLAUSIBLE_BODY }) });
      expect([401, 403, 404], `${r.route} with ${id}: ${res.statusCode} ${res.body.slice(0, 200)}`).toContain(res.statusCode);
      tried.push(r.route);
    }
  }
  // Every one was refused, so together they changed nothing (audit trail included).
  expect(changedTables(before, await databaseDigest(h.db))).toEqual([]);
  return tried;
}

describe('ownership', () => {
  it("a user gets nothing of another person's desktop (or anyone's job, host, pool) on any route", async () => {
    const tried = await expectRefusedEverywhere(h.tokens.user, [ids.bobVm, ids.samJob, ids.sueJob, ids.host, ids.pool, h.users.bob]);
    // The VM routes were among those tried, the pin/unpin actions included.
    for (const expected of ['GET /api/v1/vms/:id', 'POST /api/v1/vms/:id/pin', 'POST /api/v1/vms/:id/unpin', 'PATCH /api/v1/vms/:id', 'DELETE /api/v1/vms/:id']) expect(tried).toContain(expected);
    const bob = await h.db.prisma.desktopVm.findUniqueOrThrow({ where: { id: ids.bobVm } });
    expect(bob.pinned).toBe(false);
  });

  it("a submitter gets nothing of another's job (or any desktop) on any route", async () => {
    const tried = await expectRefusedEverywhere(h.tokens.submitter, [ids.sueJob, ids.aliceVm, ids.bobVm, ids.host, ids.pool, h.users.sue]);
    expect(tried).toContain('POST /api/v1/jobs/:id/cancel');
    expect(tried).toContain('GET /api/v1/jobs/:id');
    expect((await h.db.prisma.batchJob.findUniqueOrThrow({ where: { id: ids.sueJob } })).state).toBe('running');
  });

  it('lists show only what is the caller own, whatever the filters ask for', async () => {
    const vms = await h.call(h.tokens.user, { method: 'GET', url: `/api/v1/vms?ownerUserId=${h.users.bob}` });
    expect(vms.statusCode).toBe(200);
    expect((vms.json() as { items: unknown[] }).items).toEqual([]);
    const mine = await h.call(h.tokens.user, { method: 'GET', url: '/api/v1/vms' });
    expect((mine.json() as { items: { id: string }[] }).items.map((v) => v.id)).toEqual([ids.aliceVm]);
    const jobs = await h.call(h.tokens.submitter, { method: 'GET', url: '/api/v1/jobs?limit=200' });
    expect((jobs.json() as { items: { id: string }[] }).items.map((j) => j.id)).toEqual([ids.samJob]);
  });

  it('the owner can act on their own (the check above is not refusing everything)', async () => {
    expect((await h.call(h.tokens.user, { method: 'POST', url: `/api/v1/vms/${ids.aliceVm}/pin`, payload: {} })).statusCode).toBe(200);
    expect((await h.call(h.tokens.submitter, { method: 'GET', url: `/api/v1/jobs/${ids.samJob}` })).statusCode).toBe(200);
  });
});
