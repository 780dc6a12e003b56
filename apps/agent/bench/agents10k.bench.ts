// agents10k: 10,000 agent connections on one API process (real PostgreSQL and Redis) and the
// real scheduler worker (a process of its own, as in production). Every PC has an owner whose
// desktop is suspended on it. Measures: presence event → command (a "present" frame sent by an
// agent until the restore command the scheduler planned for it arrives on that agent's socket,
// while all agents keep heartbeating at their normal rate), heartbeat throughput, the API
// process's memory, the gateway leg alone (Redis channel → socket), and the time to connect.
// Writes bench/results/agents.json at the repo root.
import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';
import { Redis } from 'ioredis';
import { Queue } from 'bullmq';
import { createTestDatabase } from '@deskpool/db/testing';
import { loadavg } from 'node:os';
import { AGENT_PROTOCOL_VERSION } from '@deskpool/protocol';

const AGENTS = Number(process.env.BENCH_AGENTS ?? 10_000);
const HEARTBEAT_SECONDS = 20;
const IN_FLIGHT = 1000;
const COMMANDS = 2000;
/** PCs per pool: the scheduler locks one pool per event; a presence reads only its PC's part of it. */
const POOL_SIZE = Number(process.env.BENCH_POOL_SIZE ?? 200);
/** Presence events measured, sent open loop at PRESENCE_PER_S while heartbeats run. */
const PRESENCE_SAMPLES = Number(process.env.BENCH_PRESENCE_SAMPLES ?? 300);
// 5/s: each of 10,000 PCs changing presence about every half hour, an office day's average.
const PRESENCE_PER_S = Number(process.env.BENCH_PRESENCE_PER_S ?? 5);
/** Heartbeat interval of the sustained load while presence is measured (the agent default). */
const HEARTBEAT_INTERVAL_S = 15;
/** Extra node flags for the API and worker processes, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`. */
const CHILD_NODE_ARGS = (process.env.BENCH_CHILD_NODE_ARGS ?? '').split(' ').filter(Boolean);
const REDIS_URL = process.env.DESKPOOL_TEST_REDIS_URL ?? 'redis://localhost:6379';
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

type Figure = { value: number | null; unit: string; method?: string; why?: string };
const figures: Record<string, Figure> = {};

/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

async function main(): Promise<void> {
  const db = await createTestDatabase();
  const redis = new Redis(REDIS_URL);
  const prefix = `dpbench:${randomUUID()}:`;
  let api: ReturnType<typeof spawn> | undefined;
  let worker: ReturnType<typeof spawn> | undefined;
  let workerFailed: string | undefined;
  const sockets: WebSocket[] = [];
  try {
    // Pools, people, PCs, suspended desktops and credentials straight into the database:
    // enrollment is not what is measured. Each PC's owner has a desktop suspended on that PC.
    const pools = Math.ceil(AGENTS / POOL_SIZE);
    const poolIds: string[] = [];
    for (let p = 0; p < pools; p++) poolIds.push((await db.prisma.pool.create({ data: { name: `bench-${p}`, timeZone: 'UTC', storageMode: 'local' } })).id);
    const hostIds: string[] = [];
    const secrets: string[] = [];
    const idleSince = new Date(Date.now() - 2 * 3600_000);
    for (let start = 0; start < AGENTS; start += 2000) {
      const n = Math.min(2000, AGENTS - start);
      const rows = Array.from({ length: n }, (_, i) => ({ i: start + i, hostId: randomUUID(), userId: randomUUID(), poolId: poolIds[Math.floor((start + i) / POOL_SIZE)] as string }));
      await db.prisma.user.createMany({ data: rows.map((r) => ({ id: r.userId, name: `bench-user-${r.i}`, poolId: r.poolId })) });
      await db.prisma.host.createMany({
        data: rows.map((r) => ({
          id: r.hostId,
          name: `bench-${r.i}`,
          poolId: r.poolId,
          ownerUserId: r.userId,
          cores: 8,
          memoryMiB: 16384,
          diskGiB: 256,
          presenceState: 'idle' as const,
          presenceSince: idleSince,
        })),
      });
      await db.prisma.desktopVm.createMany({
        data: rows.map((r) => ({
          name: `dp-bench-vm-${r.i}`,
          ownerUserId: r.userId,
          poolId: r.poolId,
          vcpus: 2,
          memoryMiB: 4096,
          maxVcpus: 4,
          maxMemoryMiB: 8192,
          diskLocation: `/var/lib/deskpool/disks/dp-bench-vm-${r.i}.qcow2`,
          state: 'SUSPENDED' as const,
          savedStateHostId: r.hostId,
          savedStatePath: `/var/lib/deskpool/saved/dp-bench-vm-${r.i}.save`,
          fencingGeneration: 3,
        })),
      });
      const creds = rows.map((r) => ({ hostId: r.hostId, secret: `dph_bench_${randomUUID()}` }));
      await db.prisma.hostCredential.createMany({ data: creds.map((c) => ({ hostId: c.hostId, secretHash: createHash('sha256').update(c.secret).digest('hex') })) });
      hostIds.push(...rows.map((r) => r.hostId));
      secrets.push(...creds.map((c) => c.secret));
    }
    await db.prisma.$executeRaw`UPDATE users AS u SET home_host_id = h.id FROM hosts AS h WHERE h.owner_user_id = u.id`;

    // The real scheduler worker, on the bench's queue and command channels; no timers, so
    // only the presence events below make it plan.
    const queuePrefix = `dpbench${randomUUID().slice(0, 8)}`;
    worker = spawn(process.execPath, [...CHILD_NODE_ARGS, '--import', 'tsx', '--conditions', 'source', path.join(repoRoot, 'packages/scheduler/src/worker.ts')], {
      env: {
        ...process.env,
        DATABASE_URL: db.url,
        REDIS_URL,
        LOG_LEVEL: 'warn',
        DESKPOOL_QUEUE_PREFIX: queuePrefix,
        DESKPOOL_AGENT_CHANNEL_PREFIX: `${prefix}agent:`,
        DESKPOOL_SCHEDULE_TIMERS: 'false',
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    worker.once('exit', (code) => {
      if (code !== 0 && code !== null) workerFailed = `scheduler worker exited with ${code}`;
    });

    api = spawn(process.execPath, [...CHILD_NODE_ARGS, '--import', 'tsx', '--conditions', 'source', path.join(repoRoot, 'apps/agent/bench/api-server.ts')], {
      env: { ...process.env, DATABASE_URL: db.url, REDIS_URL, BENCH_PREFIX: prefix, BENCH_QUEUE_PREFIX: queuePrefix },
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
    /** Presence measurements waiting for their command, by agent index. */
    const presenceWaiters = new Map<number, (at: number, kind: string) => void>();
    let seq = 0;
    const connectOne = (i: number) =>
      new Promise<void>((resolve, reject) => {
        const ws = new WebSocket(url, { headers: { authorization: `Bearer ${secrets[i]}` } });
        ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', protocolVersion: AGENT_PROTOCOL_VERSION, agentVersion: 'bench' })));
        ws.on('message', (d: Buffer) => {
          const frame = JSON.parse(d.toString()) as { type: string; seq?: number; idempotencyKey?: string; kind?: string };
          if (frame.type === 'hello') resolve();
          else if (frame.type === 'ack' && frame.seq !== undefined) acks.get(frame.seq)?.(performance.now());
          else if (frame.type === 'command' && frame.idempotencyKey) {
            const at = performance.now();
            commandWaiters.get(frame.idempotencyKey)?.(at);
            presenceWaiters.get(i)?.(at, frame.kind ?? '?');
          }
        });
        ws.on('error', reject);
        sockets[i] = ws;
      });
    const apiCpuBeforeConnect = cpuSeconds(api.pid);
    const connectStart = performance.now();
    for (let i = 0; i < AGENTS; i += 250) await Promise.all(Array.from({ length: Math.min(250, AGENTS - i) }, (_, k) => connectOne(i + k)));
    const connectSeconds = (performance.now() - connectStart) / 1000;
    const connectApiCpu = cpuSeconds(api.pid) - apiCpuBeforeConnect;
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
    // Presence event → command, under the sustained heartbeat load of every agent at its normal
    // interval (open loop: AGENTS / HEARTBEAT_INTERVAL_S a second, whatever the answers do).
    if (workerFailed) throw new Error(workerFailed);
    const hbRate = AGENTS / HEARTBEAT_INTERVAL_S;
    const hbLatencies: number[] = [];
    let hbSent = 0;
    let hbNext = 0;
    const loadStart = performance.now();
    const hbTimer = setInterval(() => {
      const due = Math.floor(((performance.now() - loadStart) / 1000) * hbRate) - hbSent;
      for (let k = 0; k < due; k++) {
        const i = hbNext;
        hbNext = (hbNext + 1) % AGENTS;
        hbSent++;
        void heartbeat(i).then((ms) => hbLatencies.push(ms));
      }
    }, 10);
    /** Wall-clock send and receive times by host, to line up with the queue's job timestamps. */
    const wall = new Map<string, { sentAt: number; receivedAt?: number }>();
    const presence = (i: number) =>
      new Promise<{ ms: number; kind: string } | null>((resolve) => {
        const sent = performance.now();
        const record = { sentAt: Date.now() } as { sentAt: number; receivedAt?: number };
        wall.set(hostIds[i] as string, record);
        const timeout = setTimeout(() => {
          presenceWaiters.delete(i);
          resolve(null);
        }, 30_000);
        presenceWaiters.set(i, (at, kind) => {
          record.receivedAt = Date.now();
          clearTimeout(timeout);
          presenceWaiters.delete(i);
          resolve({ ms: at - sent, kind });
        });
        sockets[i]!.send(JSON.stringify({ type: 'presence', seq: ++seq, at: new Date().toISOString(), state: 'present', idleSince: null, source: 'evdev' }));
      });
    // A few events first so the worker's and the gateway's code paths are compiled; not counted.
    const WARMUP = 10;
    const order = Array.from({ length: Math.min(AGENTS, WARMUP + PRESENCE_SAMPLES) }, (_, s) => (s * 7919 + 17) % AGENTS);
    for (const i of order.slice(0, WARMUP)) await presence(i);
    const pending: Promise<{ ms: number; kind: string } | null>[] = [];
    const apiCpuBefore = cpuSeconds(api.pid);
    const workerCpuBefore = cpuSeconds(worker?.pid);
    const presenceStart = performance.now();
    for (let k = 0; k < order.length - WARMUP; k++) {
      const due = presenceStart + (k * 1000) / PRESENCE_PER_S;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      pending.push(presence(order[WARMUP + k] as number));
    }
    const outcomes = await Promise.all(pending);
    clearInterval(hbTimer);
    const apiCpu = cpuSeconds(api.pid) - apiCpuBefore;
    const workerCpu = cpuSeconds(worker?.pid) - workerCpuBefore;
    const hbSeconds = (performance.now() - loadStart) / 1000;
    const answered = outcomes.filter((o): o is { ms: number; kind: string } => o !== null);
    const missing = outcomes.length - answered.length;
    const kinds = [...new Set(answered.map((o) => o.kind))].join(', ');
    // An event that got no command counts as infinitely slow.
    const e2e = [...answered.map((o) => o.ms), ...Array.from({ length: missing }, () => Number.POSITIVE_INFINITY)];
    const p99 = percentile(e2e, 99);
    const p50 = percentile(e2e, 50);
    // Where the time went, from the scheduler queue's own timestamps of each presence event:
    // queued by the API, taken by the worker, finished by the worker (publish included).
    const queue = new Queue('events', { connection: { url: REDIS_URL, maxRetriesPerRequest: null }, prefix: queuePrefix });
    const legs = { api: [] as number[], wait: [] as number[], worker: [] as number[], delivery: [] as number[] };
    const measured = new Set(order.slice(WARMUP).map((i) => hostIds[i] as string));
    for (const job of await queue.getJobs(['completed'], 0, -1)) {
      const hostId = (job.data as { hostId?: string }).hostId;
      const w = hostId && measured.has(hostId) ? wall.get(hostId) : undefined;
      if (!w || w.receivedAt === undefined || !job.processedOn || !job.finishedOn) continue;
      legs.api.push(job.timestamp - w.sentAt);
      legs.wait.push(job.processedOn - job.timestamp);
      legs.worker.push(job.finishedOn - job.processedOn);
      legs.delivery.push(w.receivedAt - job.finishedOn);
    }
    await queue.close();
    const leg = (xs: number[]) => (xs.length === 0 ? 'n/a' : `p50 ${percentile(xs, 50).toFixed(0)} / p99 ${percentile(xs, 99).toFixed(0)} ms`);
    const breakdown = `legs over ${legs.api.length} answered events (ms clock): frame → queued by the API ${leg(legs.api)}; waiting in the queue ${leg(legs.wait)}; worker handling ${leg(legs.worker)}; worker done → command on the socket ${leg(legs.delivery)}`;
    console.log(breakdown);
    const load = loadavg()[0]!.toFixed(1);
    const cpuText = `CPU while measuring: API ${apiCpu.toFixed(1)} s, worker ${workerCpu.toFixed(1)} s (${((workerCpu * 1000) / outcomes.length).toFixed(0)} ms per presence event) over ${hbSeconds.toFixed(0)} s`;
    const presenceMethod =
      `${outcomes.length} "present" frames, each from a different agent whose PC holds its owner's suspended desktop, sent open loop at ${PRESENCE_PER_S}/s after ${WARMUP} uncounted warm-up events, ` +
      `while all ${AGENTS} agents heartbeat every ${HEARTBEAT_INTERVAL_S} s (${Math.round(hbLatencies.length / hbSeconds)}/s acked, ack p99 ${percentile(hbLatencies, 99).toFixed(1)} ms); ` +
      `from the frame leaving the agent to the command (${kinds || 'none'}) arriving on its socket: API gateway (presence row + audit, BullMQ event) → scheduler worker process (lock the PC's pool of ${POOL_SIZE}, read the PC's part of it, plan, commit, publish) → gateway → socket; ` +
      `p50 ${p50.toFixed(1)} ms; ${missing} without a command within 30 s; ${breakdown}; ${cpuText}; API, worker, PostgreSQL, Redis and the ${AGENTS} simulated agents on the same 2 shared cores (load average ${load})`;
    figures['agents10k.event_to_command_ms.p99'] = Number.isFinite(p99)
      ? { value: Number(p99.toFixed(1)), unit: 'ms', method: presenceMethod }
      : { value: null, unit: 'ms', why: `more than 1% of presence events got no command within 30 s: ${presenceMethod}` };
    figures['agents10k.event_to_command_ms.p50'] = Number.isFinite(p50)
      ? { value: Number(p50.toFixed(1)), unit: 'ms', method: 'same run as agents10k.event_to_command_ms.p99' }
      : { value: null, unit: 'ms', why: 'most presence events got no command within 30 s' };
    console.log(`presence → command: p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, ${missing} missing, kinds ${kinds}`);
    figures['agents10k.connect_s'] = { value: Number(connectSeconds.toFixed(1)), unit: 's', method: `${AGENTS} agents authenticated and greeted, 250 handshakes at a time; the API process used ${connectApiCpu.toFixed(1)} CPU-seconds meanwhile (${((connectApiCpu * 1000) / AGENTS).toFixed(2)} ms per agent), load average ${loadavg()[0]!.toFixed(1)} on 2 shared cores` };
  } finally {
    for (const ws of sockets) ws?.terminate();
    api?.kill('SIGTERM');
    worker?.kill('SIGTERM');
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
