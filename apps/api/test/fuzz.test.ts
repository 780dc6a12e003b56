// Whatever a client sends, the answer is never a 5xx, and every error uses the envelope.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './helpers.js';

let h: Harness;
let poolId: string;
let vmId: string;
let jobId: string;
beforeAll(async () => {
  h = await startHarness();
  poolId = (await h.db.prisma.pool.create({ data: { name: 'fuzz', timeZone: 'UTC' } })).id;
  vmId = (await h.db.prisma.desktopVm.create({ data: { name: 'dpt-fuzz', ownerUserId: h.users.alice, poolId, vcpus: 1, memoryMiB: 512, maxVcpus: 2, maxMemoryMiB: 1024, diskLocation: '/x' } })).id;
  jobId = (await h.db.prisma.batchJob.create({ data: { name: 'fuzz', submitterUserId: h.users.sam, submittedBy: 'user:sam', spec: {}, taskCount: 0 } })).id;
});
afterAll(async () => {
  await h.close();
});

const json = fc.jsonValue({ maxDepth: 3 });
/** Bodies shaped like the real ones, with random values: reach past the first validation error. */
const plausible = (keys: string[]) => fc.dictionary(fc.constantFrom(...keys), json, { maxKeys: keys.length });

const writes = () => [
  { method: 'POST' as const, url: '/api/v1/pools', keys: ['name', 'timeZone', 'officeDays', 'idleThresholdMinutes', 'storageMode', 'nightWindowStart'] },
  { method: 'PATCH' as const, url: `/api/v1/pools/${poolId}`, keys: ['name', 'version', 'officeDays', 'checkpointGraceSeconds', 'maxBatchPercentOwnerPresent'] },
  { method: 'POST' as const, url: '/api/v1/users', keys: ['name', 'role', 'poolId', 'homeHostId', 'displayName'] },
  { method: 'POST' as const, url: '/api/v1/vms', keys: ['name', 'ownerUserId', 'vcpus', 'memoryMiB', 'maxVcpus', 'diskGiB', 'diskLocation', 'poolId'] },
  { method: 'PATCH' as const, url: `/api/v1/vms/${vmId}`, keys: ['vcpus', 'memoryMiB', 'maxVcpus', 'maxMemoryMiB', 'version'] },
  { method: 'POST' as const, url: `/api/v1/vms/${vmId}/pin`, keys: ['until'] },
  { method: 'POST' as const, url: '/api/v1/jobs', keys: ['name', 'taskCount', 'command', 'image', 'env', 'constraints', 'deadline', 'labels', 'poolId'] },
  { method: 'POST' as const, url: '/api/v1/api-tokens', keys: ['name', 'role', 'userId'] },
  { method: 'POST' as const, url: '/api/v1/enrollment-tokens', keys: ['poolId', 'ttlSeconds', 'note'] },
];

function expectNo5xx(res: { statusCode: number; json(): unknown }, what: string) {
  expect(res.statusCode, what).toBeLessThan(500);
  if (res.statusCode >= 400) expect(res.json(), what).toMatchObject({ error: { code: expect.any(String), message: expect.any(String) } });
}

describe('no 5xx for anything a client sends', () => {
  it('handles random bodies on every write route', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: writes().length - 1 }).chain((i) => fc.tuple(fc.constant(i), fc.oneof(json, plausible(writes()[i]!.keys)))),
        async ([i, body]) => {
          const route = writes()[i]!;
          const res = await h.call(h.tokens.admin, { method: route.method, url: route.url, payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
          expectNo5xx(res, `${route.method} ${route.url} ${JSON.stringify(body)}`);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('handles random query strings, ids and raw bytes', async () => {
    const paths = ['/api/v1/pools', '/api/v1/hosts', '/api/v1/vms', '/api/v1/jobs', '/api/v1/audit', `/api/v1/jobs/${jobId}`];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...paths),
        fc.dictionary(fc.constantFrom('limit', 'cursor', 'state', 'poolId', 'since', 'until', 'entityId', 'ownerUserId'), fc.string({ maxLength: 40 })),
        fc.string({ maxLength: 40 }),
        fc.uint8Array({ maxLength: 200 }),
        async (path, query, id, raw) => {
          const qs = new URLSearchParams(query).toString();
          expectNo5xx(await h.call(h.tokens.admin, { method: 'GET', url: `${path}?${qs}` }), `GET ${path}?${qs}`);
          expectNo5xx(await h.call(h.tokens.admin, { method: 'GET', url: `/api/v1/pools/${encodeURIComponent(id)}` }), `GET pool ${id}`);
          expectNo5xx(
            await h.call(h.tokens.admin, { method: 'POST', url: '/api/v1/jobs', payload: Buffer.from(raw), headers: { 'content-type': 'application/json' } }),
            'raw body',
          );
        },
      ),
      { numRuns: 150 },
    );
  });
});
