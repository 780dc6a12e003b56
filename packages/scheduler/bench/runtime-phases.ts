// Where one placement event's time goes: the steps of SchedulerEngine.handle for a
// jobSubmitted event (4000 tasks on 1000 PCs by default), run one by one and timed (wall and
// this process's CPU). A diagnostic for runtime.bench.ts; writes no figures.
//   npx tsx --conditions source packages/scheduler/bench/runtime-phases.ts
// Knobs: BENCH_E2E_HOSTS, BENCH_E2E_TASKS, BENCH_RUNS (default 3, the first is a warm-up);
// PHASES_PROFILE=<dir> writes a CPU profile of each run's event handling alone (not the setup).
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { createTestDatabase } from '@deskpool/db/testing';
import { seedPlacementOffice } from './placement-office.js';
import { Redis } from 'ioredis';
import { plan } from '../src/core/index.js';
import { commitPlan } from '../src/runtime/commit.js';
import { dispatchCommands, undispatchedOfEvent } from '../src/runtime/dispatch.js';
import { coreEventOf, scopeOf, silentLogger } from '../src/runtime/engine.js';
import { loadSnapshot } from '../src/runtime/snapshot.js';

const HOSTS = Number(process.env.BENCH_E2E_HOSTS ?? 1000);
const TASKS = Number(process.env.BENCH_E2E_TASKS ?? 4000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const REDIS_URL = process.env.DESKPOOL_TEST_REDIS_URL ?? 'redis://localhost:6379';
const NOW = Date.UTC(2026, 10, 23, 2, 0);

async function oneRun(run: number): Promise<void> {
  const db = await createTestDatabase();
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  try {
    const { jobId } = await seedPlacementOffice(db.prisma, { hosts: HOSTS, tasks: TASKS, now: NOW });
    const job = { id: jobId };
    const event = { type: 'jobSubmitted' as const, id: `job.${job.id}`, jobId: job.id };
    const times: [string, number, number][] = [];
    let t = performance.now();
    let c = process.cpuUsage();
    const lap = (name: string) => {
      const now = performance.now();
      const cpu = process.cpuUsage(c);
      times.push([name, now - t, (cpu.user + cpu.system) / 1000]);
      t = now;
      c = process.cpuUsage();
    };
    const profiling = process.env.PHASES_PROFILE ? new Session() : null;
    if (profiling) {
      profiling.connect();
      await profiling.post('Profiler.enable');
      await profiling.post('Profiler.start');
    }
    t = performance.now();
    c = process.cpuUsage();
    const start = t;
    const scope = await scopeOf(db.prisma, event);
    if (!scope) throw new Error('no scope');
    lap('scope');
    const committed = await db.prisma.$transaction(
      async (tx) => {
        await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${'bench'}, 0))`;
        lap('lock');
        const loaded = await loadSnapshot(tx, scope);
        lap('load snapshot');
        const core = await coreEventOf(tx, event, loaded);
        if (typeof core === 'string') throw new Error(core);
        lap('core event');
        const p = plan(loaded.snapshot, core, undefined, NOW);
        lap('plan');
        await undispatchedOfEvent(tx, event.id);
        lap('leftovers');
        const result = await commitPlan(tx, p, loaded, new Date(NOW));
        lap('commit');
        return result;
      },
      { maxWait: 10_000, timeout: 120_000 },
    );
    lap('transaction end');
    const sent = await dispatchCommands(db.prisma, redis, `dpphase${process.pid}r${run}:agent:`, committed.dispatches, { now: () => NOW }, silentLogger);
    lap('dispatch');
    const total = performance.now() - start;
    if (profiling) {
      const { profile } = await profiling.post('Profiler.stop');
      writeFileSync(`${process.env.PHASES_PROFILE}/phases-run${run}.cpuprofile`, JSON.stringify(profile));
      profiling.disconnect();
    }
    process.stdout.write(
      `${run === 0 ? 'warm-up ' : ''}run ${run}: ${sent} sent in ${total.toFixed(0)} ms = ${((sent / total) * 1000).toFixed(0)}/s\n` +
        times.map(([n, ms, cpu]) => `  ${n.padEnd(16)} ${ms.toFixed(0).padStart(6)} ms wall ${cpu.toFixed(0).padStart(6)} ms CPU`).join('\n') +
        '\n',
    );
  } finally {
    redis.disconnect();
    await db.drop();
  }
}

async function main(): Promise<void> {
  for (let run = 0; run < RUNS; run++) await oneRun(run);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
