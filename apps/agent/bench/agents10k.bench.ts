// agents10k: 10,000 agent connections on one API process (real PostgreSQL and Redis).
// Measures sustained heartbeat throughput, the API process's memory, and the last leg of
// "presence event → command": a command published on a host's Redis channel reaching its agent.
// Writes bench/results/agents.json at the repo root.
import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';
import { Redis } from 'ioredis';
import { createTestDatabase } from '@deskpool/db/testing';
import { AGENT_PROTOCOL_VERSION } from '@deskpool/protocol';

const AGENTS = Number(process.env.BENCH_AGENTS ?? 10_000);
const HEARTBEAT_SECONDS = 20;
const IN_FLIGHT = 1000;
const COMMANDS = 2000;
const REDIS_URL = process.env.DESKPOOL_TEST_REDIS_URL ?? 'redis://localhost:6379';
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

type Figure = { value: number | null; unit: string; method?: string; why?: string };
const figures: Record<string, Figure> = {};

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

async function main(): Promise<void> {
  const db = await createTestDatabase();
  const redis = new Redis(REDIS_URL);
  const prefix = `dpbench:${randomUUID()}:`;
  let api: ReturnType<typeof spawn> | undefined;
  const sockets: WebSocket[] = [];
  try {
    // Hosts and credentials straight into the database: enrollment is not what is measured.
    const pool = await db.prisma.pool.create({ data: { name: 'bench', timeZone: 'UTC' } });
    const hostIds: string[] = [];
    const secrets: string[] = [];
    for (let start = 0; start < AGENTS; start += 2000) {
      const batch = Array.from({ length: Math.min(2000, AGENTS - start) }, (_, i) => ({ id: randomUUID(), name: `bench-${start + i}`, poolId: pool.id }));
      await db.prisma.host.createMany({ data: batch });
      const creds = batch.map((h) => ({ hostId: h.id, secret: `dph_bench_${randomUUID()}` }));
      await db.prisma.hostCredential.createMany({ data: creds.map((c) => ({ hostId: c.hostId, secretHash: createHash('sha256').update(c.secret).digest('hex') })) });
      hostIds.push(...batch.map((h) => h.id));
      secrets.push(...creds.map((c) => c.secret));
    }

    api = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'apps/agent/bench/api-server.ts')], {
      env: { ...process.env, DATABASE_URL: db.url, REDIS_URL, BENCH_PREFIX: prefix },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const firstLine = await new Promise<string>((resolve, reject) => {
      createInterface({ input: api!.stdout! }).once('line', resolve);
      api!.once('exit', (code) => reject(new Error(`bench API exited with ${code}`)));
    });
    const { port } = JSON.parse(firstLine) as { port: number };
    const url = `ws://127.0.0.1:${port}/api/v1/agent/ws`;

    // Connect every agent (a few hundred handshakes at a time) and say hello.
    const acks = new Map<number, (at: number) => void>();
    const commandWaiters = new Map<string, (at: number) => void>();
    let seq = 0;
    const connectOne = (i: number) =>
      new Promise<void>((resolve, reject) => {
        const ws = new WebSocket(url, { headers: { authorization: `Bearer ${secrets[i]}` } });
        ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', protocolVersion: AGENT_PROTOCOL_VERSION, agentVersion: 'bench' })));
        ws.on('message', (d: Buffer) => {
          const frame = JSON.parse(d.toString()) as { type: string; seq?: number; idempotencyKey?: string };
          if (frame.type === 'hello') resolve();
          else if (frame.type === 'ack' && frame.seq !== undefined) acks.get(frame.seq)?.(performance.now());
          else if (frame.type === 'command' && frame.idempotencyKey) commandWaiters.get(frame.idempotencyKey)?.(performance.now());
        });
        ws.on('error', reject);
        sockets[i] = ws;
      });
    const connectStart = performance.now();
    for (let i = 0; i < AGENTS; i += 250) await Promise.all(Array.from({ length: Math.min(250, AGENTS - i) }, (_, k) => connectOne(i + k)));
    const connectSeconds = (performance.now() - connectStart) / 1000;
    console.log(`${AGENTS} agents connected in ${connectSeconds.toFixed(1)} s`);

    // Heartbeats, closed loop: IN_FLIGHT outstanding at any time, round-robin over the agents.
    const heartbeat = (i: number) =>
      new Promise<number>((resolve) => {
        const s = ++seq;
        const sent = performance.now();
        acks.set(s, (at) => {
          acks.delete(s);
          resolve(at - sent);
        });
        sockets[i]!.send(JSON.stringify({ type: 'heartbeat', seq: s, at: new Date().toISOString(), uptimeSeconds: 1 }));
      });
    let done = 0;
    const latencies: number[] = [];
    const hbStart = performance.now();
    const deadline = hbStart + HEARTBEAT_SECONDS * 1000;
    const lanes = Math.min(IN_FLIGHT, AGENTS);
    await Promise.all(
      Array.from({ length: lanes }, async (_, lane) => {
        for (let i = lane; performance.now() < deadline; i = (i + lanes) % AGENTS) {
          latencies.push(await heartbeat(i));
          done++;
        }
      }),
    );
    const rate = done / ((performance.now() - hbStart) / 1000);
    figures['agents10k.heartbeats_per_s'] = {
      value: Math.round(rate),
      unit: '1/s',
      method: `${AGENTS} connected agents, ${lanes} heartbeats in flight for ${HEARTBEAT_SECONDS} s; each acked after its row update in PostgreSQL (ack p99 ${percentile(latencies, 99).toFixed(1)} ms)`,
    };

    const status = readFileSync(`/proc/${api.pid}/status`, 'utf8');
    const rssKiB = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? NaN);
    figures['agents10k.api_rss_mib'] = { value: Math.round(rssKiB / 1024), unit: 'MiB', method: `VmRSS of the API process with ${AGENTS} agents connected, after the heartbeat run` };

    // Commands through each host's Redis channel, as a scheduler worker publishes them.
    const delivery: number[] = [];
    for (let c = 0; c < COMMANDS; c++) {
      const i = Math.floor((c * 7919) % AGENTS);
      const key = `op-bench-${c.toString().padStart(6, '0')}`;
      const arrived = new Promise<number>((resolve) => commandWaiters.set(key, resolve));
      const sent = performance.now();
      await redis.publish(`${prefix}agent:${hostIds[i]}`, JSON.stringify({ type: 'command', idempotencyKey: key, kind: 'suspend', target: { vmId: `vm-${i}`, domainName: `desk-${i}`, generation: 1 }, params: {} }));
      delivery.push((await arrived) - sent);
      commandWaiters.delete(key);
    }
    figures['agents10k.command_delivery_ms.p99'] = {
      value: Number(percentile(delivery, 99).toFixed(2)),
      unit: 'ms',
      method: `${COMMANDS} commands published on per-host Redis channels with ${AGENTS} agents connected, until the agent's socket received it (p50 ${percentile(delivery, 50).toFixed(2)} ms)`,
    };
    figures['agents10k.event_to_command_ms.p99'] = {
      value: null,
      unit: 'ms',
      why: 'needs the scheduler worker in the loop (presence frame → scheduler event queue → plan → command); this bench measures the gateway legs only: see agents10k.command_delivery_ms.p99',
    };
    figures['agents10k.connect_s'] = { value: Number(connectSeconds.toFixed(1)), unit: 's', method: `${AGENTS} agents authenticated and greeted, 250 handshakes at a time` };
  } finally {
    for (const ws of sockets) ws?.terminate();
    api?.kill('SIGTERM');
    redis.disconnect();
    await db.drop().catch(() => undefined);
  }
}

async function write(): Promise<void> {
  try {
    await main();
  } catch (err) {
    const why = `bench failed: ${(err as Error).message}`;
    for (const name of ['agents10k.event_to_command_ms.p99', 'agents10k.heartbeats_per_s', 'agents10k.api_rss_mib']) figures[name] ??= { value: null, unit: name.endsWith('per_s') ? '1/s' : name.endsWith('mib') ? 'MiB' : 'ms', why };
    process.exitCode = 1;
    console.error(why);
  }
  // A trial run (fewer agents) writes elsewhere, so it never passes for the real figure.
  const dir = process.env.BENCH_RESULTS_DIR ?? path.join(repoRoot, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, 'agents.tmp.json');
  writeFileSync(tmp, `${JSON.stringify({ date: new Date().toISOString(), figures }, null, 2)}\n`);
  renameSync(tmp, path.join(dir, 'agents.json'));
  console.log(JSON.stringify(figures, null, 2));
}

await write();
