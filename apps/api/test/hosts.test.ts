import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSecret } from '../src/secrets.js';
import { errorOf, fieldsOf, MISSING_ID, startHarness, type Harness } from './helpers.js';

let h: Harness;
let poolA: string;
let poolB: string;
beforeAll(async () => {
  h = await startHarness();
  poolA = (await h.db.prisma.pool.create({ data: { name: 'a', timeZone: 'UTC' } })).id;
  poolB = (await h.db.prisma.pool.create({ data: { name: 'b', timeZone: 'UTC' } })).id;
});
afterAll(async () => {
  await h.close();
});

// Hosts come into being through agent enrollment; here they are inserted as enrollment would.
const addHost = (name: string, poolId: string, extra: { onlineState?: 'online' | 'offline' } = {}) =>
  h.db.prisma.host.create({ data: { name, poolId, cores: 8, memoryMiB: 16384, diskGiB: 256, ...extra } });

describe('hosts', () => {
  it('lists hosts filtered by pool and state, and shows one', async () => {
    const h1 = await addHost('pc-a1', poolA, { onlineState: 'online' });
    await addHost('pc-a2', poolA);
    await addHost('pc-b1', poolB, { onlineState: 'online' });
    const byPool = (await h.call(h.tokens.admin, { method: 'GET', url: `/api/v1/hosts?poolId=${poolA}` })).json() as { items: { name: string }[] };
    expect(byPool.items.map((x) => x.name).sort()).toEqual(['pc-a1', 'pc-a2']);
    const online = (await h.call(h.tokens.admin, { method: 'GET', url: `/api/v1/hosts?poolId=${poolA}&state=online` })).json() as { items: { name: string }[] };
    expect(online.items.map((x) => x.name)).toEqual(['pc-a1']);
    const shown = await h.call(h.tokens.admin, { method: 'GET', url: `/api/v1/hosts/${h1.id}` });
    expect(shown.statusCode).toBe(200);
    expect(shown.json()).toMatchObject({ id: h1.id, name: 'pc-a1', state: 'online', presence: 'unknown', drained: false, cores: 8, needsReconcile: false, asleep: false });
    const bad = await h.call(h.tokens.admin, { method: 'GET', url: '/api/v1/hosts?state=sleeping' });
    expect(fieldsOf(bad)).toEqual(['query.state']);
  });

  it('updates pool, owner and labels; refuses unknown references by field name', async () => {
    const host = await addHost('pc-upd', poolA);
    const res = await h.call(h.tokens.admin, { method: 'PATCH', url: `/api/v1/hosts/${host.id}`, payload: { poolId: poolB, ownerUserId: h.users.alice, labels: ['gpu', 'ssd'] } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ poolId: poolB, ownerUserId: h.users.alice, labels: ['gpu', 'ssd'], version: 2 });
    const badPool = await h.call(h.tokens.admin, { method: 'PATCH', url: `/api/v1/hosts/${host.id}`, payload: { poolId: MISSING_ID } });
    expect(badPool.statusCode).toBe(400);
    expect(fieldsOf(badPool)).toEqual(['body.poolId']);
    const badLabels = await h.call(h.tokens.admin, { method: 'PATCH', url: `/api/v1/hosts/${host.id}`, payload: { labels: ['has space'] } });
    expect(fieldsOf(badLabels)).toEqual(['body.labels.0']);
    const stale = await h.call(h.tokens.admin, { method: 'PATCH', url: `/api/v1/hosts/${host.id}`, payload: { labels: [], version: 1 } });
    expect(stale.statusCode).toBe(409);
    const cleared = await h.call(h.tokens.admin, { method: 'PATCH', url: `/api/v1/hosts/${host.id}`, payload: { ownerUserId: null } });
    expect(cleared.json()).toMatchObject({ ownerUserId: null });
  });

  it('drains and undrains, auditing only real changes', async () => {
    const host = await addHost('pc-drain', poolA);
    const drained = await h.call(h.tokens.admin, { method: 'POST', url: `/api/v1/hosts/${host.id}/drain` });
    expect(drained.statusCode).toBe(200);
    expect(drained.json()).toMatchObject({ drained: true });
    expect((await h.call(h.tokens.admin, { method: 'POST', url: `/api/v1/hosts/${host.id}/drain` })).json()).toMatchObject({ drained: true });
    const undrained = await h.call(h.tokens.admin, { method: 'POST', url: `/api/v1/hosts/${host.id}/undrain` });
    expect(undrained.json()).toMatchObject({ drained: false });
    const events = await h.db.prisma.auditEvent.findMany({ where: { entityId: host.id }, orderBy: { id: 'asc' } });
    expect(events.map((e) => e.action)).toEqual(['drain', 'undrain']);
    expect((await h.call(h.tokens.admin, { method: 'POST', url: `/api/v1/hosts/${MISSING_ID}/drain` })).statusCode).toBe(404);
  });

  it('removes a host and its credentials; refuses while a desktop VM lives on it', async () => {
    const host = await addHost('pc-gone', poolA);
    await h.db.prisma.hostCredential.create({ data: { hostId: host.id, secretHash: hashSecret('dph_x') } });
    const busy = await addHost('pc-busy', poolA);
    await h.db.prisma.desktopVm.create({
      data: { name: 'dpt-busy-vm', ownerUserId: h.users.alice, poolId: poolA, vcpus: 1, memoryMiB: 512, maxVcpus: 1, maxMemoryMiB: 512, diskLocation: '/x', state: 'RUNNING', currentHostId: busy.id },
    });
    const refused = await h.call(h.tokens.admin, { method: 'DELETE', url: `/api/v1/hosts/${busy.id}` });
    expect(refused.statusCode).toBe(409);
    expect(errorOf(refused).code).toBe('IN_USE');
    const res = await h.call(h.tokens.admin, { method: 'DELETE', url: `/api/v1/hosts/${host.id}` });
    expect(res.statusCode).toBe(204);
    expect(await h.db.prisma.host.findUnique({ where: { id: host.id } })).toBeNull();
    expect(await h.db.prisma.hostCredential.count({ where: { hostId: host.id } })).toBe(0);
    const event = await h.db.prisma.auditEvent.findFirstOrThrow({ where: { entityId: host.id, action: 'delete' } });
    expect(event.after).toEqual({ credentialsRevoked: 1 });
    expect((await h.call(h.tokens.admin, { method: 'DELETE', url: `/api/v1/hosts/${host.id}` })).statusCode).toBe(404);
  });

  it('answers 401 without a token and 403 to users and submitters', async () => {
    const host = await addHost('pc-auth', poolA);
    expect((await h.call(null, { method: 'GET', url: '/api/v1/hosts' })).statusCode).toBe(401);
    for (const token of [h.tokens.user, h.tokens.submitter]) {
      expect((await h.call(token, { method: 'GET', url: '/api/v1/hosts' })).statusCode).toBe(403);
      expect((await h.call(token, { method: 'GET', url: `/api/v1/hosts/${host.id}` })).statusCode).toBe(403);
      expect((await h.call(token, { method: 'POST', url: `/api/v1/hosts/${host.id}/drain` })).statusCode).toBe(403);
      expect((await h.call(token, { method: 'DELETE', url: `/api/v1/hosts/${host.id}` })).statusCode).toBe(403);
    }
    expect((await h.db.prisma.host.findUniqueOrThrow({ where: { id: host.id } })).drained).toBe(false);
  });
});
