// Generated malformed and hostile requests against every route of the API, found in the route
// table (a new route is fuzzed without being listed): never a 5xx, always the error envelope,
// and a rejected request changes nothing in the database (a digest of every table, audit included).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordAudit } from '@deskpool/db';
import { changeCount, changedTables, databaseDigest, runRestFuzz, startFuzzTarget, type FuzzTarget } from './fuzz-kit.js';

/** CI's short form; `npm run bench -w @deskpool/api` runs the long one. */
const CASES = Number(process.env.DESKPOOL_FUZZ_REST_CASES ?? 1000);
const SEED = Number(process.env.DESKPOOL_FUZZ_SEED ?? Date.now() % 2 ** 31);

let target: FuzzTarget;
beforeAll(async () => {
  target = await startFuzzTarget();
});
afterAll(async () => {
  await target?.close();
});

describe('REST fuzzing', () => {
  it('finds every route in the route table, the agent endpoint included', () => {
    const names = target.routes.map((r) => `${r.method} ${r.url}`);
    for (const expected of ['POST /api/v1/pools', 'PATCH /api/v1/vms/:id', 'POST /api/v1/jobs/:id/cancel', 'POST /api/v1/agent/enroll', 'GET /api/v1/agent/ws', 'GET /healthz', 'DELETE /api/v1/api-tokens/:id']) {
      expect(names).toContain(expected);
    }
    // Routes with a body schema get plausible bodies (then broken), so cases get past the first check.
    expect(target.routes.filter((r) => r.body).length).toBeGreaterThan(8);
  });

  it('has witnesses that do see a change (the check can fail)', async () => {
    const [count, digest] = [await changeCount(target.db), await databaseDigest(target.db)];
    await recordAudit(target.db.prisma, { entityType: 'pool', entityId: target.ids[0]!, action: 'fuzz.witness-check', actor: 'test', cause: 'test' });
    expect(await changeCount(target.db)).toBe(count + 1);
    expect(changedTables(digest, await databaseDigest(target.db))).toEqual(['audit_events']);
  });

  it('refuses the NUL character in any body, query or path field with a 400 naming it (PostgreSQL cannot store it)', async () => {
    const [count, digest] = [await changeCount(target.db), await databaseDigest(target.db)];
    const admin = { authorization: `Bearer ${target.tokens.admin}` };
    const cases = [
      { method: 'POST' as const, url: '/api/v1/pools', payload: { name: 'nul', timeZone: 'UTC', description: 'a\u0000b' }, field: 'body.description' },
      { method: 'POST' as const, url: '/api/v1/jobs', payload: { name: 'nul', command: ['echo', 'x\u0000'] }, field: 'body.command.1' },
      { method: 'POST' as const, url: '/api/v1/jobs', payload: { name: 'nul', command: ['true'], env: { ['A\u0000']: '1' } }, field: 'body.env.A\u0000' },
      { method: 'GET' as const, url: '/api/v1/audit?actor=a%00b', field: 'query.actor' },
      { method: 'GET' as const, url: '/api/v1/pools/%00', field: 'params.id' },
    ];
    for (const c of cases) {
      const res = await target.app.inject({ method: c.method, url: c.url, headers: admin, ...(c.payload ? { payload: c.payload } : {}) });
      expect(res.statusCode, c.url).toBe(400);
      const error = (res.json() as { error: { code: string; details: { issues: { location: string; path: (string | number)[] }[] } } }).error;
      expect(error.code).toBe('VALIDATION_FAILED');
      expect([error.details.issues[0]!.location, ...error.details.issues[0]!.path].join('.')).toBe(c.field);
    }
    expect(await changeCount(target.db)).toBe(count);
    expect(changedTables(digest, await databaseDigest(target.db))).toEqual([]);
  });

  it(`answers ${CASES} generated requests without a 5xx, with the error envelope, changing nothing when it refuses (seed ${SEED})`, async () => {
    const tally = await runRestFuzz(target, { count: CASES, seed: SEED, stopAt: 5 });
    expect(tally.findings, `seed ${SEED}`).toEqual([]);
    expect(tally.responses5xx).toBe(0);
    expect(tally.cases).toBe(CASES);
    // The mix reaches both outcomes: some requests are accepted, most are refused.
    expect(tally.accepted).toBeGreaterThan(0);
    expect(tally.rejected).toBeGreaterThan(CASES / 4);
    // Every route was tried.
    expect(Object.keys(tally.byRoute).sort()).toEqual([...new Set(target.routes.map((r) => `${r.method} ${r.url}`))].sort());
  }, 300_000);
});
