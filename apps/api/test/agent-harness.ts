// Shared set-up for the agent gateway tests: a real API listening on a port (real PostgreSQL and
// Redis), and real deskpool-agent processes run from apps/agent/dist.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestDatabase, type TestDatabase } from '@deskpool/db/testing';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { SchedulerEvents } from '@deskpool/scheduler';
import { createAgentGateway, type AgentGateway } from '../src/agent/index.js';
import { buildApp } from '../src/app.js';
import { generateSecret, hashSecret, SECRET_PREFIX } from '../src/secrets.js';
import { REDIS_URL } from './helpers.js';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
export const AGENT_MAIN = path.join(repoRoot, 'apps/agent/dist/main.js');

/** The agent runs from dist/: build it (incrementally) so the test never runs stale code. */
export function buildAgent(): void {
  execFileSync('npx', ['tsc', '-b', 'apps/agent'], { cwd: repoRoot, stdio: 'inherit' });
}

export interface ApiUnderTest {
  db: TestDatabase;
  redis: Redis;
  prefix: string;
  adminToken: string;
  poolId: string;
  port: number;
  url: string;
  app: FastifyInstance;
  gateway: AgentGateway;
  /** The scheduler's event queue the gateway feeds (own prefix per test file). */
  schedulerEvents: SchedulerEvents;
  /** Stops the API (agents see a disconnect) and starts a new one on the same port. */
  restart(): Promise<void>;
  stopServer(): Promise<void>;
  startServer(): Promise<void>;
  close(): Promise<void>;
}

export async function startApi(options: { https?: { key: Buffer; cert: Buffer } } = {}): Promise<ApiUnderTest> {
  const db = await createTestDatabase();
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  const prefix = `dpt:${randomUUID()}:`;
  const adminToken = generateSecret(SECRET_PREFIX.apiToken);
  await db.prisma.apiToken.create({ data: { name: 'root', role: 'admin', tokenHash: hashSecret(adminToken) } });
  const pool = await db.prisma.pool.create({ data: { name: `pool-${randomUUID().slice(0, 8)}`, timeZone: 'UTC' } });
  const schedulerEvents = new SchedulerEvents({ connection: redis, prefix: `dpt-${randomUUID()}` });
  const api = { db, redis, prefix, adminToken, poolId: pool.id, port: 0, schedulerEvents } as ApiUnderTest;

  api.startServer = async () => {
    api.gateway = createAgentGateway({ prisma: db.prisma, redis, channelPrefix: `${prefix}agent:`, keyPrefix: prefix, heartbeatIntervalSeconds: 15, events: schedulerEvents });
    api.app = await buildApp({ logLevel: false, ...(options.https ? { https: options.https } : {}) }, { prisma: db.prisma, redis, agentRoutes: api.gateway.plugin });
    await api.app.listen({ port: api.port, host: '127.0.0.1' });
    const address = api.app.server.address();
    if (typeof address !== 'object' || address === null) throw new Error('API did not bind a TCP port');
    api.port = address.port;
    api.url = `${options.https ? 'https' : 'http'}://127.0.0.1:${api.port}`;
  };
  api.stopServer = async () => {
    await api.app.close();
  };
  api.restart = async () => {
    await api.stopServer();
    await api.startServer();
  };
  api.close = async () => {
    await api.app.close().catch(() => undefined);
    await schedulerEvents.queue.obliterate({ force: true }).catch(() => undefined);
    await schedulerEvents.queue.close();
    redis.disconnect();
    await db.drop();
  };
  await api.startServer();
  return api;
}

export async function createEnrollmentToken(api: ApiUnderTest, ttlSeconds = 600): Promise<{ id: string; token: string }> {
  const res = await fetch(`${api.url}/api/v1/enrollment-tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${api.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ poolId: api.poolId, ttlSeconds }),
  });
  if (res.status !== 201) throw new Error(`enrollment token creation failed: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { id: string; token: string };
  return { id: body.id, token: body.token };
}

export interface AgentProcess {
  proc: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

export function runAgentCli(args: string[], env: Record<string, string>): AgentProcess {
  const proc = spawn(process.execPath, [AGENT_MAIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return {
    proc,
    output: () => out,
    exited,
    async kill(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

export function tempDir(label: string): { dir: string; remove(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), `dpt-${label}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Polls until `check` is true (for hooks, where expect.poll is not available). */
export async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
