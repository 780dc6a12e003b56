import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorOf, fieldsOf, MISSING_ID, startHarness, type Harness } from './helpers.js';

let h: Harness;
let poolId: string;
beforeAll(async () => {
  h = await startHarness();
  poolId = (await h.db.prisma.pool.create({ data: { name: 'p', timeZone: 'UTC' } })).id;
  await h.db.prisma.user.update({ where: { id: h.users.alice }, data: { poolId } });
});
afterAll(async () => {
  await h.close();
});

const vmBody = (name: string, ownerUserId: string, extra: Record<string, unknown> = {}) => ({
  name, ownerUserId, vcpus: 2, memoryMiB: 4096, diskGiB: 40, diskLocation: `/var/lib/deskpool/${name}.qcow2`, ...extra,
});
const createVm = async (name: string, ownerUserId: string, extra: Record<string, unknown> = {}) => {
  const res = await h.call(h.tokens.admin, { method: 'POST', url: '/api/v1/vms', payload: vmBody(name, ownerUserId, extra) });
  expect(res.statusCode).toBe(201);
  return res.json() as { id: string; [k: string]: unknown };
};

describe('desktop VMs', () => {
  it('creates a stopped VM in the owner pool with hot-plug ceilings defaulting to its size', async () => {
    const vm = await createVm('dpt-alice', h.users.alice);
    expect(vm).toMatchObject({ state: 'STOPPED', poolId, maxVcpus: 2, maxMemoryMiB: 4096, pinned: false, fencingGeneration: 0, currentHostId: null, augmentedVcpus: 0, desiredHostId: null });
    expect((await h.db.prisma.auditEvent.findFirstOrThrow({ where: { entityId: vm.id } })).action).toBe('create');
  });

  it('names bad fields: ceilings below size, unknown owner, owner without a pool', async () => {
    const low = await h.call(h.tokens.admin, { method: 'POST', url: '/api/v1/vms', payload: vmBody('dpt-low', h.users.alice, { maxVcpus: 1 }) });
    expect(fieldsOf(low)).toEqual(['body.maxVcpus']);
    const owner = await h.call(h.tokens.admin, { method: 'POST', url: '/api/v1/vms', payload: vmBody('dpt-ghost', MISSING_ID) });
    expect(fieldsOf(owner)).toEqual(['body.ownerUserId']);
    const noPool = await h.call(h.tokens.admin, { method: 'POST', url: '/api/v1/vms', payload: vmBody('dpt-bob-nopool', h.users.bob) });
    expect(fieldsOf(noPool)).toEqual(['body.poolId']);
    const huge = await h.call(h.tokens.admin, { method: 'POST', url: '/api/v1/vms', payload: vmBody('dpt-huge', h.users.alice, { vcpus: 1000 }) });
    expect(fieldsOf(huge)).toEqual(['body.vcpus']);
  });

  it('shows users their own VMs only; others are 404 to them', async () => {
    const mine = await createVm('dpt-alice-2', h.users.alice);
    const bobs = await createVm('dpt-bob', h.users.bob, { poolId });
    const list = (await h.call(h.tokens.user, { method: 'GET', url: `/api/v1/vms?ownerUserId=${h.users.bob}` })).json() as { items: unknown[] };
    expect(list.items).toEqual([]);
    const own = (await h.call(h.tokens.user, { method: 'GET', url: '/api/v1/vms' })).json() as { items: { ownerUserId: string }[] };
    expect(own.items.length).toBeGreaterThan(0);
    expect(own.items.every((v) => v.ownerUserId === h.users.alice)).toBe(true);
    expect((await h.call(h.tokens.user, { method: 'GET', url: `/api/v1/vms/${mine.id}` })).statusCode).toBe(200);
    expect((await h.call(h.tokens.user, { method: 'GET', url: `/api/v1/vms/${bobs.id}` })).statusCode).toBe(404);
    const all = (await h.call(h.tokens.admin, { method: 'GET', url: '/api/v1/vms?limit=200' })).json() as { items: unknown[] };
    expect(all.items.length).toBeGreaterThanOrEqual(3);
  });

  it('lets the owner pin and unpin; another user cannot', async () => {
    const vm = await createVm('dpt-pin', h.users.alice);
    const until = new Date(Date.now() + 12 * 3600_000).toISOString();
    const pinned = await h.call(h.tokens.user, { method: 'POST', url: `/api/v1/vms/${vm.id}/pin`, payload: { until } });
    expect(pinned.statusCode).toBe(200);
    expect(pinned.json()).toMatchObject({ pinned: true, pinnedUntil: until, version: 2 });
    expect((await h.call(h.tokens.otherUser, { method: 'POST', url: `/api/v1/vms/${vm.id}/unpin` })).statusCode).toBe(404);
    const past = await h.call(h.tokens.user, { method: 'POST', url: `/api/v1/vms/${vm.id}/pin`, payload: { until: '2000-01-01T00:00:00Z' } });
    expect(fieldsOf(past)).toEqual(['body.until']);
    const unpinned = await h.call(h.tokens.user, { method: 'POST', url: `/api/v1/vms/${vm.id}/unpin` });
    expect(unpinned.json()).toMatchObject({ pinned: false, pinnedUntil: null });
    const noBody = await h.call(h.tokens.admin, { method: 'POST', url: `/api/v1/vms/${vm.id}/pin` });
    expect(noBody.json()).toMatchObject({ pinned: true, pinnedUntil: null });
    const events = await h.db.prisma.auditEvent.findMany({ where: { entityId: vm.id }, orderBy: { id: 'asc' } });
    expect(events.map((e) => `${e.action} ${e.actor}`)).toEqual([expect.stringMatching(/^create token:/), 'pin user:alice', 'unpin user:alice', expect.stringMatching(/^pin token:/)]);
  });

  it('resizes within ceilings, refusing sizes above them by field', async () => {
    const vm = await createVm('dpt-resize', h.users.alice, { maxVcpus: 4, maxMemoryMiB: 8192 });
    const ok = await h.call(h.tokens.admin, { method: 'PATCH', url: `/api/v1/vms/${vm.id}`, payload: { vcpus: 4 } });
    expect(ok.json()).toMatchObject({ vcpus: 4, version: 2 });
    const over = await h.call(h.tokens.admin, { method: 'PATCH', url: `/api/v1/vms/${vm.id}`, payload: { memoryMiB: 16384 } });
    expect(over.statusCode).toBe(400);
    expect(fieldsOf(over)).toEqual(['body.memoryMiB']);
    expect((await h.call(h.tokens.user, { method: 'PATCH', url: `/api/v1/vms/${vm.id}`, payload: { vcpus: 1 } })).statusCode).toBe(403);
  });

  it('deletes only a stopped VM', async () => {
    const vm = await createVm('dpt-del', h.users.alice);
    await h.db.prisma.desktopVm.update({ where: { id: vm.id }, data: { state: 'SUSPENDED' } });
    const refused = await h.call(h.tokens.admin, { method: 'DELETE', url: `/api/v1/vms/${vm.id}` });
    expect(refused.statusCode).toBe(409);
    expect(errorOf(refused).code).toBe('IN_USE');
    await h.db.prisma.desktopVm.update({ where: { id: vm.id }, data: { state: 'STOPPED' } });
    expect((await h.call(h.tokens.admin, { method: 'DELETE', url: `/api/v1/vms/${vm.id}` })).statusCode).toBe(204);
    expect((await h.call(h.tokens.admin, { method: 'DELETE', url: `/api/v1/vms/${vm.id}` })).statusCode).toBe(404);
  });

  it('refuses submitters and anonymous callers, and users creating VMs', async () => {
    expect((await h.call(null, { method: 'GET', url: '/api/v1/vms' })).statusCode).toBe(401);
    expect((await h.call(h.tokens.submitter, { method: 'GET', url: '/api/v1/vms' })).statusCode).toBe(403);
    expect((await h.call(h.tokens.user, { method: 'POST', url: '/api/v1/vms', payload: vmBody('dpt-self', h.users.alice) })).statusCode).toBe(403);
    expect((await h.call(h.tokens.user, { method: 'DELETE', url: `/api/v1/vms/${MISSING_ID}` })).statusCode).toBe(403);
  });
});
