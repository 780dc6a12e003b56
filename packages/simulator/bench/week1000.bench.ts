// week1000: a 1,000-PC office on the real stack (API, scheduler runtime, one agent per PC over
// a WebSocket, simulated hypervisors), as much of a week as this machine can follow within the
// bench budget. Writes bench/results/week1000.json at the repo root, with exactly what was run.
//
// Environment: BENCH_PCS (1000), BENCH_HOURS (15.5: Monday 18:00 → Tuesday 09:30), BENCH_START_HOUR
// (18), BENCH_SPEED (simulated seconds per real second, 150), BENCH_POOL_SIZE (100),
// BENCH_DEMAND (1.2), DESKPOOL_TEST_DATABASE_URL / REDIS_URL.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_TEST_ADMIN_URL } from '@deskpool/db/testing';
import { readFileSync } from 'node:fs';
import { formatFleetReport, parseFleetOptions, runFleet, week1000Figures, type BenchFigure, type FleetReport } from '../src/index.js';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const env = (name: string, fallback: number): number => (process.env[name] !== undefined ? Number(process.env[name]) : fallback);

const pcs = env('BENCH_PCS', 1000);
const hours = env('BENCH_HOURS', 15.5);
const startHour = env('BENCH_START_HOUR', 18);
const speed = env('BENCH_SPEED', 150);
const poolSize = env('BENCH_POOL_SIZE', 100);
const demand = env('BENCH_DEMAND', 1.2);

type Figure = BenchFigure;

function write(figures: Record<string, Figure>): void {
  const dir = path.join(repoRoot, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'week1000.json');
  const tmp = path.join(dir, 'week1000.tmp.json');
  writeFileSync(tmp, `${JSON.stringify({ date: new Date().toISOString(), machine: `${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, load ${os.loadavg()[0]?.toFixed(1)} at the end`, figures }, null, 2)}\n`);
  renameSync(tmp, file);
  process.stdout.write(`wrote ${file}\n`);
}

function describeRun(r: FleetReport, realSeconds: number): string {
  return (
    `${r.pcs} PCs (${Math.ceil(r.pcs / poolSize)} pools), real API + scheduler runtime + ${r.pcs} agents over WebSockets in one process, simulated hypervisors; ` +
    `${((Date.parse(r.window.until) - Date.parse(r.window.from)) / 3_600_000).toFixed(1)} simulated hours (${r.window.from.slice(0, 16)} → ${r.window.until.slice(0, 16)} UTC: evening, night and morning, not a whole week) at ${r.run.speed}x, ` +
    `${realSeconds} s real; seeded presence, batch demand ${demand}× night capacity`
  );
}

async function main(): Promise<void> {
  // `--from-report FILE`: the figures of an earlier run's report.json, evaluated again.
  const from = process.argv.indexOf('--from-report');
  if (from >= 0) {
    const r = JSON.parse(readFileSync(process.argv[from + 1] ?? '', 'utf8')) as FleetReport;
    write(week1000Figures(r, { what: `${describeRun(r, r.run.realSeconds)} (figures evaluated from the run's saved report)`, load: os.loadavg()[0] ?? 0 }));
    return;
  }
  const options = parseFleetOptions({
    days: 1,
    startHour,
    hours,
    pcs,
    poolSize,
    speed,
    demand,
    setup: 'database',
    concurrency: 4,
    progressEveryMs: 15_000,
    reportDir: path.join(repoRoot, 'packages/simulator/reports/week1000'),
    databaseAdminUrl: process.env.DESKPOOL_TEST_DATABASE_URL ?? DEFAULT_TEST_ADMIN_URL,
    ...(process.env.REDIS_URL ? { redisUrl: process.env.REDIS_URL } : {}),
  });
  const startedAt = performance.now();
  const run = await runFleet(options, { print: (l) => process.stdout.write(`${l}\n`) });
  try {
    const r = run.report;
    process.stdout.write(`${formatFleetReport(r)}\n`);
    write(week1000Figures(r, { what: describeRun(r, Math.round((performance.now() - startedAt) / 1000)), load: os.loadavg()[0] ?? 0 }));
  } finally {
    await run.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`week1000 failed: ${(err as Error).stack ?? String(err)}\n`);
    const why = `the run failed: ${(err as Error).message}`.slice(0, 400);
    write({
      'week1000.harvest_ratio': { value: null, unit: '0..1', why },
      'week1000.energy_saved_ratio': { value: null, unit: '0..1', why },
      'week1000.instant_morning_ratio': { value: null, unit: '0..1', why },
      'week1000.morning_wait_s.p99': { value: null, unit: 's', why },
    });
    process.exit(1);
  },
);
