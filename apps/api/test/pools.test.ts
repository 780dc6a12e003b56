import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorOf, fieldsOf, MISSING_ID, startHarness, type Harness } from './helpers.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

const createPool = async (name: string, extra: Record<string, unknown> = {}) => {
  const res = await h.call(h.tokens.admin, { method: 'POST', url: '/api/v1/pools', payload: { name, ...extra } });
  expect(res.statusCode).toBe(201);
  return res.json() as { id: string; version: number; [k: string]: unknown };
};

describe('pools', () => {
  it('creates a pool with policy defaults and shows it', async () => {
    const pool = await createPool('engineering', { timeZone: 'Europe/Berlin', idleThresholdMinutes: 20 });
    expect(pool).toMatchObject({ name: 'engineering', timeZone: 'Europe/Berlin', idleThresholdMinutes: 20, storageMode: 'local', batchAllowed: true, version: 1 });
    const shown = await h.call(h.tokens.admin, { method: 'GET', url: `/api/v1/pools/${pool.id}` });
    expect(shown.statusCode).toBe(200);
    expect(shown.json()).toEqual(pool);
  });

  it('names the offending field when the body is invalid, and creates nothing', async () => {
    const before = await h.db.prisma.pool.count();
    const res = await h.call(h.tokens.admin, { method: 'POST', url: '/api/v1/pools', payload: { name: 'bad', timeZone: 'Mars/Olympus', officeHoursStart: '25:00', surprise: 1 } });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).code).toBe('VALIDATION_FAILED');
    expect(fieldsOf(res)).toEqual(expect.arrayContaining(['body.timeZone', 'body.officeHoursStart', 'body.surprise']));
    expect(await h.db.prisma.pool.count()).toBe(before);
  });

  it('answers 401 without a token or with an unknown one, 403 for non-admin roles', async () => {
    expect((await h.call(null, { method: 'GET', url: '/api/v1/pools' })).statusCode).toBe(401);
    const unknown = await h.call('dpa_not-a-real-token', { method: 'GET', url: '/api/v1/pools' });
    expect(unknown.statusCode).toBe(401);
    expect(errorOf(unknown).code).toBe('UNAUTHORIZED');
    for (const token of [h.tokens.user, h.tokens.submitter]) {
      const res = await h.call(token, { method: 'POST', url: '/api/v1/pools', payload: { name: 'nope' } });
      expect(res.statusCode).toBe(403);
      expect(errorOf(res).code).toBe('FORBIDDEN');
      expect((await h.call(token, { method: 'GET', url: '/api/v1/pools' })).statusCode).toBe(403);
    }
  });

  it('answers 404 for a pool that does not exist and 400 for a malformed id', async () => {
    const res = await h.call(h.tokens.admin, { method: 'GET', url: `/api/v1/pools/${MISSING_ID}` });
    expect(res.statusCode).toBe(404);
    expect(errorOf(res).code).toBe('NOT_FOUND');
    expect((await h.call(h.tokens.admin, { method: 'PATCH', url: `/api/v1/pools/${MISSING_ID}`, payload: { batchAllowed: false } })).statusCode).toBe(404);
    expect((await h.call(h.tokens.admin, { method: 'DELETE', url: `/api/v1/pools/${MISSING_ID}` })).statusCode).toBe(404);
    const bad = await h.call(h.tokens.admin, { method: 'GET', url: '/api/v1/pools/not-a-uuid' });
    expect(bad.statusCode).toBe(400);
    expect(fieldsOf(bad)).toEqual(['params.id']);
  });

  it('answers 409 for a duplicate name', async () => {
    await createPool('dup');
    const res = await h.call(h.tokens.admin, { method: 'POST', url: '/api/v1/pools', payload: { name: 'dup' } });
    expect(res.statusCode).toBe(409);
    expect(errorOf(res).code).toBe('CONFLICT');
  });

  it('updates policy, bumps the version and refuses a stale version', async () => {
    const pool = await createPool('sales');
    const res = await h.call(h.tokens.admin, { method: 'PATCH', url: `/api/v1/pools/${pool.id}`, payload: { batchAllowed: false, version: 1 } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ batchAllowed: false, version: 2 });
    const stale = await h.call(h.tokens.admin, { method: 'PATCH', url: `/api/v1/pools/${pool.id}`, payload: { batchAllowed: true, version: 1 } });
    expect(stale.statusCode).toBe(409);
    expect(errorOf(stale).code).toBe('VERSION_CONFLICT');
    expect((await h.db.prisma.pool.findUniqueOrThrow({ where: { id: pool.id } })).batchAllowed).toBe(false);
    const empty = await h.call(h.tokens.admin, { method: 'PATCH', url: `/api/v1/pools/${pool.id}`, payload: { version: 2 } });
    expect(empty.statusCode).toBe(400);
  });

  it('loses no write when many PATCHes of one pool arrive at once', async () => {
    const pool = await createPool('race');
    const changes: Record<string, unknown>[] = [
      { idleThresholdMinutes: 31 }, { checkpointGraceSeconds: 45 }, { batchAllowed: false }, { preStaging: false }, { powerManagement: false },
      { storageMode: 'shared' }, { maxBatchPercentOwnerPresent: 40 }, { description: 'racy' }, { nightWindowStart: '21:00' }, { officeDays: [1, 2, 3] },
    ];
    const results = await Promise.all(changes.map((payload) => h.call(h.tokens.admin, { method: 'PATCH', url: `/api/v1/pools/${pool.id}`, payload })));
    expect(results.map((r) => r.statusCode)).toEqual(changes.map(() => 200));
    const final = await h.db.prisma.pool.findUniqueOrThrow({ where: { id: pool.id } });
    expect(final).toMatchObject(Object.assign({}, ...changes));
    expect(final.version).toBe(1 + changes.length);
    const events = await h.db.prisma.auditEvent.findMany({ where: { entityId: pool.id, action: 'update' } });
    expect(events.map((e) => (e.after as { version: number }).version).sort((a, b) => a - b)).toEqual(changes.map((_, i) => i + 2));
  });

  it('takes a burst of PATCHes larger than the connection pool without a 500 or a lost write', async () => {
    const pool = await createPool('burst');
    const n = 60;
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) => h.call(h.tokens.admin, { method: 'PATCH', url: `/api/v1/pools/${pool.id}`, payload: { idleThresholdMinutes: i + 1 } })),
    );
    // 503 (busy, retry) is an honest answer under overload; 500 never is.
    for (const r of results) expect([200, 503], r.body).toContain(r.statusCode);
    const applied = results.filter((r) => r.statusCode === 200).length;
    expect(applied).toBeGreaterThan(0);
    expect((await h.db.prisma.pool.findUniqueOrThrow({ where: { id: pool.id } })).version).toBe(1 + applied);
    expect(await h.db.prisma.auditEvent.count({ where: { entityId: pool.id, action: 'update' } })).toBe(applied);
  });

  it('lets exactly one of several PATCHes carrying the same version win', async () => {
    const pool = await createPool('race-versioned');
    const results = await Promise.all(
      [10, 20, 30, 40, 50].map((idleThresholdMinutes) => h.call(h.tokens.admin, { method: 'PATCH', url: `/api/v1/pools/${pool.id}`, payload: { idleThresholdMinutes, version: 1 } })),
    );
    const codes = results.map((r) => r.statusCode).sort();
    expect(codes).toEqual([200, 409, 409, 409, 409]);
    const winner = results.find((r) => r.statusCode === 200)!.json() as { idleThresholdMinutes: number };
    expect((await h.db.prisma.pool.findUniqueOrThrow({ where: { id: pool.id } })).idleThresholdMinutes).toBe(winner.idleThresholdMinutes);
  });

  it('refuses to delete a pool that still has hosts, deletes an empty one', async () => {
    const busy = await createPool('busy');
    await h.db.prisma.host.create({ data: { name: 'pc-busy', poolId: busy.id } });
    const refused = await h.call(h.tokens.admin, { method: 'DELETE', url: `/api/v1/pools/${busy.id}` });
    expect(refused.statusCode).toBe(409);
    expect(errorOf(refused).code).toBe('IN_USE');
    const empty = await createPool('empty');
    const res = await h.call(h.tokens.admin, { method: 'DELETE', url: `/api/v1/pools/${empty.id}` });
    expect(res.statusCode).toBe(204);
    expect(await h.db.prisma.pool.findUnique({ where: { id: empty.id } })).toBeNull();
  });

  it('writes an audit event with actor and cause for every change', async () => {
    const pool = await createPool('audited');
    await h.call(h.tokens.admin, { method: 'PATCH', url: `/api/v1/pools/${pool.id}`, payload: { description: 'x' } });
    await h.call(h.tokens.admin, { method: 'DELETE', url: `/api/v1/pools/${pool.id}` });
    const events = await h.db.prisma.auditEvent.findMany({ where: { entityType: 'pool', entityId: pool.id }, orderBy: { id: 'asc' } });
    expect(events.map((e) => e.action)).toEqual(['create', 'update', 'delete']);
    const adminToken = await h.db.prisma.apiToken.findFirstOrThrow({ where: { name: 'root' } });
    for (const e of events) {
      expect(e.actor).toBe(`token:${adminToken.id}`);
      expect(e.cause).toMatch(/^api:(POST|PATCH|DELETE) \/api\/v1\/pools/);
    }
    expect(events[1]!.before).toMatchObject({ description: '' });
    expect(events[1]!.after).toMatchObject({ description: 'x' });
  });

  it('pages through the list with an opaque cursor', async () => {
    for (let i = 0; i < 5; i++) await createPool(`page-${i}`);
    const total = await h.db.prisma.pool.count();
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const url: string = `/api/v1/pools?limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const res = await h.call(h.tokens.admin, { method: 'GET', url });
      expect(res.statusCode).toBe(200);
      const page = res.json() as { items: { id: string }[]; nextCursor: string | null };
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((p) => p.id));
      cursor = page.nextCursor;
    } while (cursor !== null);
    expect(seen).toHaveLength(total);
    expect(new Set(seen).size).toBe(total);
    const tooBig = await h.call(h.tokens.admin, { method: 'GET', url: '/api/v1/pools?limit=201' });
    expect(fieldsOf(tooBig)).toEqual(['query.limit']);
    const badCursor = await h.call(h.tokens.admin, { method: 'GET', url: '/api/v1/pools?cursor=garbage' });
    expect(badCursor.statusCode).toBe(400);
    expect(fieldsOf(badCursor)).toEqual(['query.cursor']);
  });
});
