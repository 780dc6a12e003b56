// End-to-end placement benchmark of the scheduler runtime: a job submission event goes through
// BullMQ to a worker, which loads the pool from PostgreSQL, plans, commits every placement
// (task transition, operation row, audit events) in one transaction and publishes the commands
// on Redis. Figure: batch.e2e_placements_per_s = placements committed and dispatched / second,
// from publishing the event to the last command sent. Median of BENCH_RUNS runs, each on a
// fresh database. Merges its figure into bench/results/scheduler.json at the repo root.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { PrismaClient } from '@deskpool/db';
import { loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestDatabase } from '@deskpool/db/testing';
import { seedPlacementOffice } from './placement-office.js';
import { Redis } from 'ioredis';
import { createSchedulerRuntime } from '../src/runtime/runtime.js';

const HOSTS = Number(process.env.BENCH_E2E_HOSTS ?? 1000);
const TASKS = Number(process.env.BENCH_E2E_TASKS ?? 4000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const REDIS_URL = process.env.DESKPOOL_TEST_REDIS_URL ?? 'redis://localhost:6379';
/** 02:00 UTC on a Monday: outside office hours, batch may run. */
const NOW = Date.UTC(2026, 10, 23, 2, 0);

/** CPU seconds (user + system) a process has used, from /proc (Linux). */
function processCpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return 0; // the backend exited
  }
}

/** CPU seconds used so far by each PostgreSQL backend serving this database, by pid. */
async function backendCpu(prisma: PrismaClient): Promise<Map<number, number>> {
  const rows = await prisma.$queryRawUnsafe<{ pid: number }[]>('SELECT pid FROM pg_stat_activity WHERE datname = current_database()');
  return new Map(rows.map((r) => [r.pid, processCpuSeconds(r.pid)]));
}

async function oneRun(run: number): Promise<{ placements: number; ms: number; cpuS: number; pgCpuS: number }> {
  const db = await createTestDatabase();
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const connection = redis.duplicate();
  const tag = `dpbench${process.pid}r${run}`;
  try {
    const { jobId } = await seedPlacementOffice(db.prisma, { hosts: HOSTS, tasks: TASKS, now: NOW });
    const job = { id: jobId };
    const runtime = createSchedulerRuntime({ prisma: db.prisma, redis, connection, queuePrefix: `${tag}q`, channelPrefix: `${tag}:agent:`, clock: { now: () => NOW } });
    const pgBefore = await backendCpu(db.prisma);
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    await runtime.events.publishJobSubmitted({ jobId: job.id });
    for (;;) {
      const state = await runtime.events.queue.getJobState(`job.${job.id}`);
      if (state === 'completed') break;
      if (state === 'failed') throw new Error('the job submission event failed');
      await new Promise((r) => setTimeout(r, 5));
    }
    const ms = performance.now() - started;
    const cpu = process.cpuUsage(cpuBefore);
    const pgAfter = await backendCpu(db.prisma);
    let pgCpuS = 0;
    for (const [pid, after] of pgAfter) pgCpuS += after - (pgBefore.get(pid) ?? 0);
    const placements = await db.prisma.operation.count({ where: { kind: 'run-batch', status: 'sent' } });
    await runtime.close();
    await runtime.events.queue.obliterate({ force: true });
    return { placements, ms, cpuS: (cpu.user + cpu.system) / 1e6, pgCpuS };
  } finally {
    connection.disconnect();
    redis.disconnect();
    await db.drop();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

function mergeInto(file: string, figures: Record<string, unknown>): void {
  let existing: { figures?: Record<string, unknown> } = {};
  if (existsSync(file)) existing = JSON.parse(readFileSync(file, 'utf8')) as typeof existing;
  const merged = { ...existing, date: new Date().toISOString(), figures: { ...existing.figures, ...figures } };
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(`${file}.tmp`, `${JSON.stringify(merged, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
}

async function main(): Promise<void> {
  const rates: number[] = [];
  const cpuRates: number[] = [];
  const loads: number[] = [];
  const runsText: string[] = [];
  // One uncounted run first, as a long-running worker would be: its code compiled by the JIT.
  const warmup = await oneRun(-1);
  process.stdout.write(`warm-up: ${warmup.placements} placements in ${warmup.ms.toFixed(0)} ms (not counted)\n`);
  for (let run = 0; run < RUNS; run += 1) {
    const { placements, ms, cpuS, pgCpuS } = await oneRun(run);
    const rate = (placements / ms) * 1000;
    rates.push(rate);
    cpuRates.push(placements / (cpuS + pgCpuS));
    loads.push(loadavg()[0] ?? NaN);
    runsText.push(`${Math.round(ms)} ms`);
    process.stdout.write(
      `run ${run + 1}: ${placements} placements in ${ms.toFixed(0)} ms = ${rate.toFixed(0)}/s; CPU ${cpuS.toFixed(2)} s (bench + worker) + ${pgCpuS.toFixed(2)} s (PostgreSQL) = ${(placements / (cpuS + pgCpuS)).toFixed(0)} placements per CPU-second (load average ${loadavg()[0]?.toFixed(1)})\n`,
    );
  }
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
  const figure = {
    value: Math.round(median(rates)),
    unit: '1/s',
    target: '>= 2000',
    method:
      `median of ${RUNS} after an uncounted warm-up run (${runsText.join(', ')}): one jobSubmitted event (${TASKS} tasks, ${HOSTS} PCs) through BullMQ → worker: pool lock, load, plan, commit in one transaction (task rows with version checks, operations, audit, multi-row statements), one Redis pipeline publishing the commands, operations marked sent; ` +
      `placements sent / wall time from publish to job completed; worker in the bench process, PostgreSQL and Redis on the same 2 shared cores (load average ${loads.map((l) => l.toFixed(1)).join(', ')})`,
  };
  const cpuFigure = {
    value: Math.round(median(cpuRates)),
    unit: '1/s',
    target: null,
    method: `same runs as batch.e2e_placements_per_s: placements / CPU seconds of the bench+worker process and of the PostgreSQL backends serving the run (from /proc; Redis excluded); steadier than wall time on a shared machine`,
  };
  mergeInto(path.join(root, 'bench', 'results', 'scheduler.json'), { 'batch.e2e_placements_per_s': figure, 'batch.e2e_placements_per_cpu_s': cpuFigure });
  process.stdout.write(`batch.e2e_placements_per_s = ${figure.value}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
