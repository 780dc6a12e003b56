// Shared set-up for the metrics and dashboard tests: a real API listening on a port (real
// PostgreSQL and Redis) with the agent gateway, metrics observing agent events, and hand-made
// agents speaking the protocol over real WebSockets.
import { randomUUID } from 'node:crypto';
import type { Prisma } from '@deskpool/db';
import { createTestDatabase, type TestDatabase } from '@deskpool/db/testing';
import { AGENT_PROTOCOL_VERSION, type DownFrame } from '@deskpool/protocol';
import { SchedulerEvents } from '@deskpool/scheduler';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { WebSocket } from 'ws';
import { createAgentGateway, type AgentGateway } from '../src/agent/index.js';
import { buildApp, type AppDeps } from '../src/app.js';
import { DeskpoolMetrics } from '../src/metrics/index.js';
import { generateSecret, hashSecret, SECRET_PREFIX } from '../src/secrets.js';
import { REDIS_URL } from './helpers.js';

export interface DashboardApi {
  db: TestDatabase;
  redis: Redis;
  url: string;
  adminToken: string;
  poolId: string;
  app: FastifyInstance;
  gateway: AgentGateway;
  metrics: DeskpoolMetrics;
  /** The scheduler's event queue the gateway feeds; the metrics read its depth (same prefix). */
  schedulerEvents: SchedulerEvents;
  queuePrefix: string;
  close(): Promise<void>;
}

export async function startDashboardApi(extra: Partial<AppDeps> = {}): Promise<DashboardApi> {
  const db = await createTestDatabase();
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  const prefix = `dpt:${randomUUID()}:`;
  const queuePrefix = `dpt-${randomUUID()}`;
  const adminToken = generateSecret(SECRET_PREFIX.apiToken);
  await db.prisma.apiToken.create({ data: { name: 'root', role: 'admin', tokenHash: hashSecret(adminToken) } });
  const pool = await db.prisma.pool.create({ data: { name: `pool-${randomUUID().slice(0, 8)}`, timeZone: 'UTC' } });
  const schedulerEvents = new SchedulerEvents({ connection: redis, prefix: queuePrefix });
  // Scrapes in tests must see the rows just written.
  const metrics = new DeskpoolMetrics({ prisma: db.prisma, redis, queuePrefix, cacheMs: 0, processMetrics: false });
  const gateway = createAgentGateway({ prisma: db.prisma, redis, channelPrefix: `${prefix}agent:`, keyPrefix: prefix, heartbeatIntervalSeconds: 15, events: metrics.observeAgentEvents(schedulerEvents) });
  metrics.countConnectedAgentsWith(() => gateway.registry.size);
  const app = await buildApp({ logLevel: false }, { prisma: db.prisma, redis, agentRoutes: gateway.plugin, metrics, ...extra });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (typeof address !== 'object' || address === null) throw new Error('API did not bind a TCP port');
  return {
    db,
    redis,
    url: `http://127.0.0.1:${address.port}`,
    adminToken,
    poolId: pool.id,
    app,
    gateway,
    metrics,
    schedulerEvents,
    queuePrefix,
    async close() {
      await app.close().catch(() => undefined);
      await metrics.close();
      await schedulerEvents.queue.obliterate({ force: true }).catch(() => undefined);
      await schedulerEvents.queue.close();
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
      await db.drop();
    },
  };
}

/** A host row with a working credential, as enrollment would leave it. */
export async function addHost(api: DashboardApi, data: Partial<Prisma.HostUncheckedCreateInput> & { name: string }): Promise<{ hostId: string; credential: string }> {
  const host = await api.db.prisma.host.create({ data: { poolId: api.poolId, cores: 8, memoryMiB: 16384, ...data } });
  const credential = generateSecret(SECRET_PREFIX.hostCredential);
  await api.db.prisma.hostCredential.create({ data: { hostId: host.id, secretHash: hashSecret(credential) } });
  return { hostId: host.id, credential };
}

export interface FakeAgent {
  /** Sends a sequenced frame (seq and at filled in) and waits for its ack. */
  send(frame: Record<string, unknown>): Promise<DownFrame>;
  close(): Promise<void>;
}

/** An agent of our own over a real WebSocket: hello first, then frames one at a time. */
export async function connectAgent(api: DashboardApi, credential: string): Promise<FakeAgent> {
  const ws = new WebSocket(`${api.url.replace('http', 'ws')}/api/v1/agent/ws`, { headers: { authorization: `Bearer ${credential}` } });
  const waiting: ((f: DownFrame) => void)[] = [];
  ws.on('message', (d: Buffer) => {
    const frame = JSON.parse(d.toString()) as DownFrame;
    if (frame.type === 'command') return;
    waiting.shift()?.(frame);
  });
  await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
  const answer = () =>
    new Promise<DownFrame>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no answer from the API within 10 s')), 10_000);
      waiting.push((f) => (clearTimeout(timer), resolve(f)));
    });
  let seq = 0;
  const hello = answer();
  ws.send(JSON.stringify({ type: 'hello', protocolVersion: AGENT_PROTOCOL_VERSION, agentVersion: 'test' }));
  const greeting = await hello;
  if (greeting.type !== 'hello') throw new Error(`expected hello, got ${JSON.stringify(greeting)}`);
  return {
    async send(frame) {
      const reply = answer();
      ws.send(JSON.stringify({ seq: ++seq, at: new Date().toISOString(), ...frame }));
      const got = await reply;
      if (got.type !== 'ack') throw new Error(`frame ${JSON.stringify(frame)} answered with ${JSON.stringify(got)}`);
      return got;
    },
    async close() {
      if (ws.readyState === ws.CLOSED) return;
      const closed = new Promise((resolve) => ws.once('close', resolve));
      ws.close();
      await closed;
    },
  };
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * A strict reader of the Prometheus text format (0.0.4): every line must be a HELP, a TYPE or
 * a sample of a declared metric, or parsing fails naming the line.
 */
export function parsePrometheus(text: string): { types: Map<string, string>; samples: Sample[] } {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  const name = '[a-zA-Z_:][a-zA-Z0-9_:]*';
  const sampleLine = new RegExp(`^(${name})(?:\\{(.*)\\})? (-?[0-9.eE+-]+|NaN|\\+Inf|-Inf)(?: -?\\d+)?$`);
  const label = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)/;
  for (const [i, line] of text.split('\n').entries()) {
    if (line === '') continue;
    if (line.startsWith('# HELP ')) continue;
    const type = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      types.set(type[1]!, type[2]!);
      continue;
    }
    const m = sampleLine.exec(line);
    if (!m) throw new Error(`line ${i + 1} is not Prometheus text format: ${line}`);
    const metric = m[1]!;
    const base = metric.replace(/_(bucket|sum|count)$/, '');
    if (!types.has(metric) && !types.has(base)) throw new Error(`line ${i + 1}: sample of undeclared metric ${metric}`);
    const labels: Record<string, string> = {};
    let rest = m[2] ?? '';
    while (rest.length > 0) {
      const l = label.exec(rest);
      if (!l) throw new Error(`line ${i + 1}: bad labels ${m[2]}`);
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c));
      rest = rest.slice(l[0].length);
    }
    const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    if (m[3] !== 'NaN' && Number.isNaN(value)) throw new Error(`line ${i + 1}: bad value ${m[3]}`);
    samples.push({ name: metric, labels, value });
  }
  return { types, samples };
}

/** The value of one sample, or undefined when absent. */
export function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}
