// Secrets: stored only as hashes, compared in constant time, and never written to a log. The log
// check runs the processes as operators do (the API from main.ts at LOG_LEVEL=trace, a real
// deskpool-agent) through a whole flow — bootstrap admin, API token, enrollment token, enroll,
// agent connection, token use, failed attempts — and scans everything they printed.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestDatabase, type TestDatabase } from '@deskpool/db/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAgent, runAgentCli, tempDir, type AgentProcess } from './agent-harness.js';
import { REDIS_URL } from './helpers.js';
import { generateSecret, hashesEqual, hashSecret, SECRET_PREFIX } from '../src/secrets.js';

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const SRC = fileURLToPath(new URL('../src/', import.meta.url));

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** Every row of every table as text: what an attacker with a database dump would read. */
async function dumpDatabase(db: TestDatabase): Promise<string> {
  const tables = await db.prisma.$queryRaw<{ name: string }[]>`SELECT table_name::text AS name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`;
  const parts: string[] = [];
  for (const { name } of tables) {
    const rows = await db.prisma.$queryRawUnsafe<{ row: string }[]>(`SELECT to_jsonb(t)::text AS row FROM "${name}" t`);
    parts.push(...rows.map((r) => r.row));
  }
  return parts.join('\n');
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sourceFiles(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
}

describe('secret comparison', () => {
  it('compares hashes with a constant-time function that answers correctly', () => {
    const a = hashSecret(generateSecret(SECRET_PREFIX.apiToken));
    expect(hashesEqual(a, a)).toBe(true);
    expect(hashesEqual(a, hashSecret('other'))).toBe(false);
    expect(hashesEqual(a, a.slice(0, 10))).toBe(false);
    expect(hashesEqual(a, '')).toBe(false);
    expect(readFileSync(path.join(SRC, 'secrets.ts'), 'utf8')).toMatch(/timingSafeEqual\(/);
  });

  it('never compares a secret or its hash with == / === anywhere in the API (lookups go by hash through a unique index)', () => {
    const offending: string[] = [];
    for (const file of sourceFiles(SRC)) {
      const text = readFileSync(file, 'utf8');
      for (const [i, line] of text.split('\n').entries()) {
        // A hash or secret value on either side of == / != (ids, kinds and null checks are fine).
        if (/[\w.]*(hash|secret)[\w.]*\s*[!=]==?[^=]|[!=]==?\s*[\w.]*(hash|secret)/i.test(line)) offending.push(`${path.relative(SRC, file)}:${i + 1}: ${line.trim()}`);
      }
    }
    expect(offending).toEqual([]);
  });
});

describe('secrets at rest and in logs, through a full flow', () => {
  let db: TestDatabase;
  let api: ReturnType<typeof spawn> | undefined;
  let apiLog = '';
  let agent: AgentProcess | undefined;
  const agentLogs: string[] = [];
  const state = tempDir('secrets');
  const bootstrap = generateSecret(SECRET_PREFIX.apiToken);
  const issued: Record<string, string> = { bootstrapAdminToken: bootstrap };
  let base = '';

  beforeAll(async () => {
    buildAgent();
    db = await createTestDatabase();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    api = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', MAIN], {
      env: { PATH: process.env.PATH ?? '', DATABASE_URL: db.url, REDIS_URL, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'trace', DESKPOOL_BOOTSTRAP_ADMIN_TOKEN: bootstrap },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    api.stdout?.on('data', (d: Buffer) => (apiLog += d.toString()));
    api.stderr?.on('data', (d: Buffer) => (apiLog += d.toString()));
    for (let i = 0; i < 600; i++) {
      if (await fetch(`${base}/healthz`).then((r) => r.ok, () => false)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`the API did not start:\n${apiLog.slice(-2000)}`);
  }, 120_000);

  afterAll(async () => {
    await agent?.kill('SIGKILL');
    api?.kill('SIGKILL');
    state.remove();
    await db?.drop();
  });

  const call = async (token: string, method: string, url: string, body?: unknown) => {
    const res = await fetch(`${base}${url}`, { method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    return { status: res.status, body: (await res.json().catch(() => null)) as Record<string, unknown> | null };
  };

  it('issues every kind of secret, uses them, enrolls and connects an agent', async () => {
    const pool = await call(bootstrap, 'POST', '/api/v1/pools', { name: 'secrets', timeZone: 'UTC' });
    expect(pool.status).toBe(201);
    const user = await call(bootstrap, 'POST', '/api/v1/users', { name: 'carol', role: 'user', poolId: pool.body!.id });
    const token = await call(bootstrap, 'POST', '/api/v1/api-tokens', { name: 'carol-laptop', role: 'user', userId: user.body!.id });
    expect(token.status).toBe(201);
    issued.userApiToken = token.body!.token as string;
    expect((await call(issued.userApiToken, 'GET', '/api/v1/me')).status).toBe(200);
    // Failed attempts: a token one character off, and an admin token used where a host credential belongs.
    expect((await call(`${issued.userApiToken}x`, 'GET', '/api/v1/me')).status).toBe(401);
    const enrollment = await call(bootstrap, 'POST', '/api/v1/enrollment-tokens', { poolId: pool.body!.id, ttlSeconds: 600 });
    expect(enrollment.status).toBe(201);
    issued.enrollmentToken = enrollment.body!.token as string;

    const env = {
      DESKPOOL_SERVER_URL: base,
      DESKPOOL_AGENT_STATE_DIR: state.dir,
      DESKPOOL_AGENT_PRESENCE_SOURCES: JSON.stringify([{ kind: 'logind', pollSeconds: 60 }]),
      DESKPOOL_AGENT_DRIVER: JSON.stringify({ kind: 'simulated' }),
    };
    const enroll = runAgentCli(['enroll', '--token', issued.enrollmentToken], env);
    expect(await enroll.exited, enroll.output()).toBe(0);
    agentLogs.push(enroll.output());
    // The same token again: refused, and the refusal must not echo it either.
    const again = runAgentCli(['enroll', '--token', issued.enrollmentToken], { ...env, DESKPOOL_AGENT_STATE_DIR: path.join(state.dir, 'again') });
    expect(await again.exited).not.toBe(0);
    agentLogs.push(again.output());

    const credentialFile = JSON.parse(readFileSync(path.join(state.dir, 'credential.json'), 'utf8')) as { hostId: string; credential: string };
    issued.hostCredential = credentialFile.credential;
    expect(issued.hostCredential.startsWith(SECRET_PREFIX.hostCredential)).toBe(true);
    agent = runAgentCli(['run'], env);
    await expect.poll(async () => (await db.prisma.host.findUnique({ where: { id: credentialFile.hostId } }))?.onlineState, { timeout: 30_000 }).toBe('online');
    // A second connection with a wrong credential, one character off.
    const wrong = await fetch(`${base}/api/v1/agent/ws`, { headers: { authorization: `Bearer ${issued.hostCredential}x` } });
    expect(wrong.status).toBe(401);
    await agent.kill('SIGTERM');
    agentLogs.push(agent.output());
    agent = undefined;
  }, 120_000);

  it('stores none of them, only their SHA-256', async () => {
    const dump = await dumpDatabase(db);
    for (const [name, secret] of Object.entries(issued)) {
      expect(dump.includes(secret), `${name} in the database`).toBe(false);
      expect(dump.includes(hashSecret(secret)), `hash of ${name} in the database`).toBe(true);
    }
  });

  it('prints none of them, in the API log at trace level or in the agent output', async () => {
    expect(Object.keys(issued).sort()).toEqual(['bootstrapAdminToken', 'enrollmentToken', 'hostCredential', 'userApiToken']);
    expect(apiLog.length).toBeGreaterThan(1000); // the log did capture the flow (requests at trace level)
    expect(apiLog).toMatch(/\/api\/v1\/agent\/enroll/);
    for (const [name, secret] of Object.entries(issued)) {
      // The secret part alone too (a log could strip the dpa_/dpe_/dph_ prefix).
      const body = secret.slice(4);
      expect(apiLog.includes(body), `${name} in the API log`).toBe(false);
      for (const log of agentLogs) expect(log.includes(body), `${name} in the agent output`).toBe(false);
    }
  });
});
