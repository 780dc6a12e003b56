import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorOf, fieldsOf, MISSING_ID, startHarness, type Harness } from './helpers.js';

let h: Harness;
let poolId: string;
beforeAll(async () => {
  h = await startHarness();
  poolId = (await h.db.prisma.pool.create({ data: { name: 'p', timeZone: 'UTC' } })).id;
});
afterAll(async () => {
  await h.close();
});

describe('users', () => {
  it('creates, lists, shows, updates and deletes a user', async () => {
    const created = await h.call(h.tokens.admin, { method: 'POST', url: '/api/v1/users', payload: { name: 'carol', displayName: 'Carol C', poolId } });
    expect(created.statusCode).toBe(201);
    const carol = created.json() as { id: string };
    expect(carol).toMatchObject({ name: 'carol', role: 'user', poolId, version: 1 });
    const list = (await h.call(h.tokens.admin, { method: 'GET', url: '/api/v1/users?limit=200' })).json() as { items: { name: string }[] };
    expect(list.items.map((u) => u.name)).toContain('carol');
    expect((await h.call(h.tokens.admin, { method: 'GET', url: `/api/v1/users/${carol.id}` })).json()).toMatchObject({ name: 'carol' });
    const updated = await h.call(h.tokens.admin, { method: 'PATCH', url: `/api/v1/users/${carol.id}`, payload: { role: 'submitter', version: 1 } });
    expect(updated.json()).toMatchObject({ role: 'submitter', version: 2 });
    expect((await h.call(h.tokens.admin, { method: 'DELETE', url: `/api/v1/users/${carol.id}` })).statusCode).toBe(204);
    expect((await h.call(h.tokens.admin, { method: 'GET', url: `/api/v1/users/${carol.id}` })).statusCode).toBe(404);
    const actions = (await h.db.prisma.auditEvent.findMany({ where: { entityId: carol.id }, orderBy: { id: 'asc' } })).map((e) => e.action);
    expect(actions).toEqual(['create', 'update', 'delete']);
  });

  it('names bad fields, refuses duplicates and unknown references', async () => {
    const bad = await h.call(h.tokens.admin, { method: 'POST', url: '/api/v1/users', payload: { name: 'has space', role: 'king' } });
    expect(bad.statusCode).toBe(400);
    expect(fieldsOf(bad).sort()).toEqual(['body.name', 'body.role']);
    expect((await h.call(h.tokens.admin, { method: 'POST', url: '/api/v1/users', payload: { name: 'alice' } })).statusCode).toBe(409);
    const badPool = await h.call(h.tokens.admin, { method: 'POST', url: '/api/v1/users', payload: { name: 'dave', poolId: MISSING_ID } });
    expect(fieldsOf(badPool)).toEqual(['body.poolId']);
    expect(await h.db.prisma.user.findUnique({ where: { name: 'dave' } })).toBeNull();
  });

  it('refuses to delete a user who still owns a desktop VM', async () => {
    await h.db.prisma.desktopVm.create({ data: { name: 'dpt-bob', ownerUserId: h.users.bob, poolId, vcpus: 1, memoryMiB: 512, maxVcpus: 1, maxMemoryMiB: 512, diskLocation: '/x' } });
    const res = await h.call(h.tokens.admin, { method: 'DELETE', url: `/api/v1/users/${h.users.bob}` });
    expect(res.statusCode).toBe(409);
    expect(errorOf(res).code).toBe('IN_USE');
  });

  it('is admin-only', async () => {
    expect((await h.call(null, { method: 'GET', url: '/api/v1/users' })).statusCode).toBe(401);
    for (const token of [h.tokens.user, h.tokens.submitter]) {
      expect((await h.call(token, { method: 'GET', url: '/api/v1/users' })).statusCode).toBe(403);
      expect((await h.call(token, { method: 'POST', url: '/api/v1/users', payload: { name: 'x' } })).statusCode).toBe(403);
      expect((await h.call(token, { method: 'DELETE', url: `/api/v1/users/${h.users.alice}` })).statusCode).toBe(403);
    }
  });
});

describe('me', () => {
  it('tells each token who it is', async () => {
    const admin = (await h.call(h.tokens.admin, { method: 'GET', url: '/api/v1/me' })).json() as { role: string; user: unknown; actor: string };
    expect(admin).toMatchObject({ role: 'admin', user: null });
    expect(admin.actor).toMatch(/^token:/);
    expect((await h.call(h.tokens.user, { method: 'GET', url: '/api/v1/me' })).json()).toMatchObject({ role: 'user', actor: 'user:alice', user: { name: 'alice' } });
    expect((await h.call(null, { method: 'GET', url: '/api/v1/me' })).statusCode).toBe(401);
  });
});

describe('API tokens', () => {
  it('shows a new token once, stores only its hash, and a revoked token stops working', async () => {
    const res = await h.call(h.tokens.admin, { method: 'POST', url: '/api/v1/api-tokens', payload: { name: 'carol-cli', role: 'user', userId: h.users.alice } });
    expect(res.statusCode).toBe(201);
    const created = res.json() as { id: string; token: string };
    expect(created.token).toMatch(/^dpa_[A-Za-z0-9_-]{43}$/);
    const row = await h.db.prisma.apiToken.findUniqueOrThrow({ where: { id: created.id } });
    expect(row.tokenHash).not.toContain(created.token);
    expect((await h.call(created.token, { method: 'GET', url: '/api/v1/me' })).statusCode).toBe(200);
    const list = (await h.call(h.tokens.admin, { method: 'GET', url: '/api/v1/api-tokens' })).json() as { items: Record<string, unknown>[] };
    expect(list.items.find((t) => t.id === created.id)).not.toHaveProperty('token');
    expect((await h.call(h.tokens.admin, { method: 'DELETE', url: `/api/v1/api-tokens/${created.id}` })).statusCode).toBe(204);
    expect((await h.call(created.token, { method: 'GET', url: '/api/v1/me' })).statusCode).toBe(401);
    expect((await h.call(h.tokens.admin, { method: 'DELETE', url: `/api/v1/api-tokens/${MISSING_ID}` })).statusCode).toBe(404);
  });

  it('requires a userId for user and submitter tokens', async () => {
    const res = await h.call(h.tokens.admin, { method: 'POST', url: '/api/v1/api-tokens', payload: { name: 'orphan', role: 'submitter' } });
    expect(res.statusCode).toBe(400);
    expect(fieldsOf(res)).toEqual(['body.userId']);
    const missing = await h.call(h.tokens.admin, { method: 'POST', url: '/api/v1/api-tokens', payload: { name: 'ghost', role: 'user', userId: MISSING_ID } });
    expect(fieldsOf(missing)).toEqual(['body.userId']);
  });

  it('is admin-only', async () => {
    for (const token of [h.tokens.user, h.tokens.submitter]) {
      expect((await h.call(token, { method: 'POST', url: '/api/v1/api-tokens', payload: { name: 'x', role: 'admin' } })).statusCode).toBe(403);
      expect((await h.call(token, { method: 'GET', url: '/api/v1/api-tokens' })).statusCode).toBe(403);
    }
  });
});

describe('enrollment tokens', () => {
  it('issues a one-time token for a pool with an expiry, lists without secrets, revokes', async () => {
    const res = await h.call(h.tokens.admin, { method: 'POST', url: '/api/v1/enrollment-tokens', payload: { poolId, ttlSeconds: 600, note: 'floor 2' } });
    expect(res.statusCode).toBe(201);
    const created = res.json() as { id: string; token: string; expiresAt: string; createdAt: string };
    expect(created.token).toMatch(/^dpe_/);
    expect(Date.parse(created.expiresAt) - Date.parse(created.createdAt)).toBeGreaterThan(590_000);
    const list = (await h.call(h.tokens.admin, { method: 'GET', url: `/api/v1/enrollment-tokens?poolId=${poolId}` })).json() as { items: Record<string, unknown>[] };
    expect(list.items).toHaveLength(1);
    expect(list.items[0]).not.toHaveProperty('token');
    expect(list.items[0]).toMatchObject({ note: 'floor 2', revokedAt: null });
    expect((await h.call(h.tokens.admin, { method: 'DELETE', url: `/api/v1/enrollment-tokens/${created.id}` })).statusCode).toBe(204);
    expect((await h.db.prisma.enrollmentToken.findUniqueOrThrow({ where: { id: created.id } })).revokedAt).not.toBeNull();
  });

  it('names bad fields and unknown pools', async () => {
    const ttl = await h.call(h.tokens.admin, { method: 'POST', url: '/api/v1/enrollment-tokens', payload: { poolId, ttlSeconds: 5 } });
    expect(fieldsOf(ttl)).toEqual(['body.ttlSeconds']);
    const pool = await h.call(h.tokens.admin, { method: 'POST', url: '/api/v1/enrollment-tokens', payload: { poolId: MISSING_ID } });
    expect(fieldsOf(pool)).toEqual(['body.poolId']);
    expect((await h.call(h.tokens.user, { method: 'POST', url: '/api/v1/enrollment-tokens', payload: { poolId } })).statusCode).toBe(403);
  });
});
