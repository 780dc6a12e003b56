// The process as operators run it: env validation, migrations on start, the bootstrap admin token.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createTestDatabase, type TestDatabase } from '@deskpool/db/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBootstrapAdminToken } from '../src/bootstrap.js';
import { ConfigError, parseEnv } from '../src/config.js';
import { REDIS_URL } from './helpers.js';

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const BOOTSTRAP = 'bootstrap-secret-for-tests-0123456789abcdef';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db.drop();
});

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** Runs main.ts from source (tsx, resolving workspace packages from their sources). */
function startApi(env: Record<string, string>) {
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', MAIN], {
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, output: () => output };
}

async function waitForHealthy(base: string, exited: Promise<number | null>): Promise<void> {
  let done = false;
  void exited.then(() => (done = true));
  for (let i = 0; i < 300 && !done; i++) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the API did not become healthy');
}

describe('configuration', () => {
  it('names every bad variable in one message', () => {
    let err: unknown;
    try {
      parseEnv({ DATABASE_URL: 'mysql://x', PORT: '99999', LOG_LEVEL: 'loud', TLS_CERT_FILE: '/c.pem' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as ConfigError).message;
    for (const name of ['DATABASE_URL', 'REDIS_URL', 'PORT', 'LOG_LEVEL', 'TLS_KEY_FILE']) expect(message).toContain(name);
  });

  it('fills defaults for optional variables', () => {
    const env = parseEnv({ DATABASE_URL: 'postgresql://a@b/c', REDIS_URL: 'redis://localhost:6379', PORT: '' });
    expect(env).toMatchObject({ PORT: 8080, HOST: '0.0.0.0', LOG_LEVEL: 'info', TRUST_PROXY: false });
  });
});

describe('bootstrap admin token', () => {
  it('creates the admin token once, even when several processes start together', async () => {
    const results = await Promise.all([1, 2, 3].map(() => ensureBootstrapAdminToken(db.prisma, BOOTSTRAP)));
    expect(results.sort()).toEqual(['created', 'exists', 'exists']);
    expect(await db.prisma.apiToken.count({ where: { name: 'bootstrap-admin', role: 'admin' } })).toBe(1);
    expect(await db.prisma.auditEvent.count({ where: { entityType: 'api_token', cause: 'startup:DESKPOOL_BOOTSTRAP_ADMIN_TOKEN' } })).toBe(1);
  });
});

describe('deskpool-api process', () => {
  it('exits with a clear message when the environment is wrong', async () => {
    const api = startApi({ DATABASE_URL: 'not a url', REDIS_URL: REDIS_URL });
    expect(await api.exited).toBe(1);
    expect(api.output()).toContain('DATABASE_URL must be a URL starting with postgresql://');
  });

  it('migrates, serves, and lets the bootstrap admin log in', async () => {
    const fresh = await createTestDatabase(); // already migrated: start must be a no-op on it
    const port = await freePort();
    const api = startApi({ DATABASE_URL: fresh.url, REDIS_URL, PORT: String(port), HOST: '127.0.0.1', DESKPOOL_BOOTSTRAP_ADMIN_TOKEN: BOOTSTRAP });
    const base = `http://127.0.0.1:${port}`;
    try {
      await waitForHealthy(base, api.exited);
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
      const me = await fetch(`${base}/api/v1/me`, { headers: { authorization: `Bearer ${BOOTSTRAP}` } });
      expect(me.status).toBe(200);
      expect(await me.json()).toMatchObject({ role: 'admin', tokenName: 'bootstrap-admin' });
      const pool = await fetch(`${base}/api/v1/pools`, {
        method: 'POST',
        headers: { authorization: `Bearer ${BOOTSTRAP}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'first', timeZone: 'Europe/Berlin' }),
      });
      expect(pool.status).toBe(201);
      // The agent endpoint is mounted too: a bogus enrollment is refused, not an unknown route.
      const enroll = await fetch(`${base}/api/v1/agent/enroll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      expect(enroll.status).toBeGreaterThanOrEqual(400);
      expect(enroll.status).toBeLessThan(500);
      expect(enroll.status).not.toBe(404);
    } finally {
      api.child.kill('SIGTERM');
      await api.exited;
      await fresh.drop();
    }
  });
});
