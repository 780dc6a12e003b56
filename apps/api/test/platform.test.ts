// Everything around the routes: unknown routes, malformed bodies, health, readiness, OpenAPI.
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { errorOf, startHarness, type Harness } from './helpers.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

/** A TCP port nothing listens on. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

describe('error envelope', () => {
  it('answers unknown routes with 404 JSON', async () => {
    const res = await h.call(h.tokens.admin, { method: 'GET', url: '/api/v1/nothing-here' });
    expect(res.statusCode).toBe(404);
    expect(res.headers['content-type']).toMatch(/application\/json/);
    expect(errorOf(res).code).toBe('NOT_FOUND');
    expect((await h.call(null, { method: 'DELETE', url: '/nowhere' })).statusCode).toBe(404);
  });

  it('answers a malformed JSON body with 400, not 500', async () => {
    const res = await h.call(h.tokens.admin, { method: 'POST', url: '/api/v1/pools', headers: { 'content-type': 'application/json' }, payload: '{"name": "x",' });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).code).toBe('BAD_REQUEST');
  });

  it('answers a wrong content type with 415 and an oversized body with 413', async () => {
    const xml = await h.call(h.tokens.admin, { method: 'POST', url: '/api/v1/pools', headers: { 'content-type': 'application/xml' }, payload: '<pool/>' });
    expect(xml.statusCode).toBe(415);
    expect(errorOf(xml).code).toBe('UNSUPPORTED_MEDIA_TYPE');
    const big = await h.call(h.tokens.admin, { method: 'POST', url: '/api/v1/pools', payload: { name: 'big', description: 'x'.repeat(2 * 1024 * 1024) } });
    expect(big.statusCode).toBe(413);
  });

  it('answers a body that is not an object with 400 naming the body', async () => {
    const res = await h.call(h.tokens.admin, { method: 'POST', url: '/api/v1/pools', payload: [1, 2] });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).code).toBe('VALIDATION_FAILED');
  });

  it('rejects a malformed Authorization header with 401', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/api/v1/me', headers: { authorization: 'Basic dXNlcjpwYXNz' } });
    expect(res.statusCode).toBe(401);
  });
});

describe('health and readiness', () => {
  it('reports Postgres and Redis up', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/healthz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok', checks: { postgres: 'ok', redis: 'ok' } });
  });

  it('reports a down Redis with 503 naming it', async () => {
    const deadRedis = new Redis({ host: '127.0.0.1', port: await closedPort(), lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    deadRedis.on('error', () => {});
    const app = await buildApp({ logLevel: false, healthCheckTimeoutMs: 1000 }, { prisma: h.db.prisma, redis: deadRedis });
    try {
      const res = await app.inject({ method: 'GET', url: '/healthz' });
      expect(res.statusCode).toBe(503);
      const err = errorOf(res) as { code: string; message: string; details: { checks: Record<string, string> } };
      expect(err.code).toBe('SERVICE_UNAVAILABLE');
      expect(err.message).toContain('redis');
      expect(err.details.checks.postgres).toBe('ok');
      expect(err.details.checks.redis).not.toBe('ok');
    } finally {
      await app.close();
      deadRedis.disconnect();
    }
  });

  it('is ready once every migration is applied', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(200);
  });
});

describe('OpenAPI', () => {
  it('describes the routes with bearer auth', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/docs/json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json() as { openapi: string; paths: Record<string, unknown>; components: { securitySchemes: Record<string, unknown> } };
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/v1/pools/', '/api/v1/pools/{id}', '/api/v1/jobs/', '/api/v1/audit/', '/healthz']));
    expect(doc.components.securitySchemes).toHaveProperty('bearerAuth');
  });
});
