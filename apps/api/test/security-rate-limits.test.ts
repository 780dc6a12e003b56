// Rate limits on enrollment, agent connections and failed authentications: 429 with Retry-After
// and the error envelope, per client address, shared across API processes through Redis.
import { randomUUID } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '@deskpool/db/testing';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAgentGateway } from '../src/agent/index.js';
import { buildApp } from '../src/app.js';
import { ConfigError, parseEnv } from '../src/config.js';
import type { RateLimitSettings } from '../src/rate-limit.js';
import { generateSecret, hashSecret, SECRET_PREFIX } from '../src/secrets.js';
import { REDIS_URL } from './helpers.js';

let db: TestDatabase;
let redis: Redis;
let adminToken: string;
const apps: FastifyInstance[] = [];
const prefix = `dpt:${randomUUID()}:`;

async function app(limits: Partial<RateLimitSettings> & { shared?: boolean } = {}): Promise<FastifyInstance> {
  const { shared, ...rest } = limits;
  const gateway = createAgentGateway({ prisma: db.prisma, redis, channelPrefix: `${prefix}agent:`, keyPrefix: prefix });
  const rateLimits: RateLimitSettings = {
    windowMs: 60_000,
    enrollMax: 100,
    agentConnectMax: 100,
    failedAuthMax: 100,
    ...(shared ? { redis, keyPrefix: `${prefix}rl:` } : {}),
    ...rest,
  };
  const a = await buildApp({ logLevel: false, rateLimits }, { prisma: db.prisma, redis, agentRoutes: gateway.plugin });
  await a.ready();
  apps.push(a);
  return a;
}

const from = (ip: string, opts: InjectOptions & { token?: string }): InjectOptions => {
  const { token, ...rest } = opts;
  return { ...rest, remoteAddress: ip, headers: { ...(rest.headers ?? {}), ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}) } };
};

const INVENTORY = {
  hostname: 'pc-rl',
  cpuCores: 2,
  memoryMiB: 2048,
  diskGiB: 20,
  gpus: [],
  macAddresses: [],
  hypervisor: { kvm: true, libvirtVersion: null, qemuVersion: null, liveMigration: false, hotplugCpu: false, hotplugMemory: false },
  agentVersion: 'test',
};

function expectRateLimited(res: { statusCode: number; headers: Record<string, unknown>; json(): unknown }) {
  expect(res.statusCode).toBe(429);
  const retryAfter = Number(res.headers['retry-after']);
  expect(Number.isInteger(retryAfter) && retryAfter >= 1).toBe(true);
  expect(res.json()).toEqual({ error: { code: 'RATE_LIMITED', message: expect.stringMatching(/retry after \d+ s/), details: { retryAfterSeconds: retryAfter } } });
}

beforeAll(async () => {
  db = await createTestDatabase();
  redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  adminToken = generateSecret(SECRET_PREFIX.apiToken);
  await db.prisma.apiToken.create({ data: { name: 'root', role: 'admin', tokenHash: hashSecret(adminToken) } });
});
afterAll(async () => {
  for (const a of apps) await a.close();
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
  await db.drop();
});

describe('rate limits', () => {
  it('refuses an address after too many failed bearer tokens, even with a valid token; other addresses go on', async () => {
    const a = await app({ failedAuthMax: 3 });
    for (let i = 0; i < 3; i++) expect((await a.inject(from('10.0.0.1', { method: 'GET', url: '/api/v1/me', token: `dpa_wrong${i}` }))).statusCode).toBe(401);
    expectRateLimited(await a.inject(from('10.0.0.1', { method: 'GET', url: '/api/v1/me', token: adminToken })));
    expectRateLimited(await a.inject(from('10.0.0.1', { method: 'GET', url: '/api/v1/me', token: 'dpa_wrong-again' })));
    expect((await a.inject(from('10.0.0.2', { method: 'GET', url: '/api/v1/me', token: adminToken }))).statusCode).toBe(200);
    // Health checks are not behind the limit (load balancers probe them from one address).
    expect((await a.inject(from('10.0.0.1', { method: 'GET', url: '/healthz' }))).statusCode).not.toBe(429);
  });

  it('successful requests do not count against the failed-authentication limit', async () => {
    const a = await app({ failedAuthMax: 2 });
    for (let i = 0; i < 10; i++) expect((await a.inject(from('10.0.1.1', { method: 'GET', url: '/api/v1/me', token: adminToken }))).statusCode).toBe(200);
  });

  it('limits enrollment attempts per address, and counts unknown enrollment tokens as failed authentications', async () => {
    const a = await app({ enrollMax: 2, failedAuthMax: 100 });
    const body = { token: 'dpe_not-a-real-token-but-long-enough-000000000000', inventory: { hostname: 'pc-1' } };
    for (let i = 0; i < 2; i++) expect((await a.inject(from('10.0.2.1', { method: 'POST', url: '/api/v1/agent/enroll', payload: body }))).statusCode).toBeLessThan(500);
    expectRateLimited(await a.inject(from('10.0.2.1', { method: 'POST', url: '/api/v1/agent/enroll', payload: body })));
    expect((await a.inject(from('10.0.2.2', { method: 'POST', url: '/api/v1/agent/enroll', payload: body }))).statusCode).not.toBe(429);

    const b = await app({ enrollMax: 100, failedAuthMax: 2 });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const payload = { token: generateSecret(SECRET_PREFIX.enrollmentToken), inventory: INVENTORY };
      statuses.push((await b.inject(from('10.0.2.3', { method: 'POST', url: '/api/v1/agent/enroll', payload }))).statusCode);
    }
    expect(statuses).toEqual([401, 401, 429]);
  });

  it('limits agent connection attempts per address', async () => {
    const a = await app({ agentConnectMax: 2, failedAuthMax: 100 });
    const ws = (ip: string) => a.inject(from(ip, { method: 'GET', url: '/api/v1/agent/ws', token: 'dph_unknown' }));
    expect((await ws('10.0.3.1')).statusCode).toBe(401);
    expect((await ws('10.0.3.1')).statusCode).toBe(401);
    expectRateLimited(await ws('10.0.3.1'));
    expect((await ws('10.0.3.2')).statusCode).toBe(401);
  });

  it('shares the counts between API processes through Redis', async () => {
    const one = await app({ failedAuthMax: 2, shared: true });
    const two = await app({ failedAuthMax: 2, shared: true });
    expect((await one.inject(from('10.0.4.1', { method: 'GET', url: '/api/v1/me', token: 'dpa_bad1' }))).statusCode).toBe(401);
    expect((await two.inject(from('10.0.4.1', { method: 'GET', url: '/api/v1/me', token: 'dpa_bad2' }))).statusCode).toBe(401);
    expectRateLimited(await one.inject(from('10.0.4.1', { method: 'GET', url: '/api/v1/me', token: adminToken })));
    expectRateLimited(await two.inject(from('10.0.4.1', { method: 'GET', url: '/api/v1/me', token: adminToken })));
  });

  it('lets the address in again once the window has passed', async () => {
    const a = await app({ failedAuthMax: 1, windowMs: 400 });
    expect((await a.inject(from('10.0.5.1', { method: 'GET', url: '/api/v1/me', token: 'dpa_bad' }))).statusCode).toBe(401);
    expectRateLimited(await a.inject(from('10.0.5.1', { method: 'GET', url: '/api/v1/me', token: adminToken })));
    await expect.poll(async () => (await a.inject(from('10.0.5.1', { method: 'GET', url: '/api/v1/me', token: adminToken }))).statusCode, { timeout: 5_000 }).toBe(200);
  });
});

describe('rate limit configuration', () => {
  const base = { DATABASE_URL: 'postgresql://a@b/c', REDIS_URL: 'redis://localhost:6379' };
  it('has defaults and reads every limit from the environment', () => {
    expect(parseEnv(base)).toMatchObject({ RATE_LIMIT_WINDOW_SECONDS: 60, RATE_LIMIT_ENROLL_MAX: 10, RATE_LIMIT_AGENT_CONNECT_MAX: 60, RATE_LIMIT_FAILED_AUTH_MAX: 20, RATE_LIMIT_STORE: 'memory' });
    expect(parseEnv({ ...base, RATE_LIMIT_ENROLL_MAX: '500', RATE_LIMIT_STORE: 'redis' })).toMatchObject({ RATE_LIMIT_ENROLL_MAX: 500, RATE_LIMIT_STORE: 'redis' });
  });
  it('names every bad limit', () => {
    try {
      parseEnv({ ...base, RATE_LIMIT_FAILED_AUTH_MAX: '0', RATE_LIMIT_WINDOW_SECONDS: 'soon', RATE_LIMIT_STORE: 'disk' });
      expect.unreachable('parseEnv accepted bad limits');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const problems = (err as ConfigError).problems.join('\n');
      expect(problems).toMatch(/RATE_LIMIT_FAILED_AUTH_MAX must be at least 1/);
      expect(problems).toMatch(/RATE_LIMIT_WINDOW_SECONDS must be a number/);
      expect(problems).toMatch(/RATE_LIMIT_STORE must be memory or redis/);
    }
  });
});
