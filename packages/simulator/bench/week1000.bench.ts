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
import { formatFleetReport, parseFleetOptions, runFleet, type FleetReport } from '../src/index.js';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const env = (name: string, fallback: number): number => (process.env[name] !== undefined ? Number(process.env[name]) : fallback);

const pcs = env('BENCH_PCS', 1000);
const hours = env('BENCH_HOURS', 15.5);
const startHour = env('BENCH_START_HOUR', 18);
const speed = env('BENCH_SPEED', 150);
const poolSize = env('BENCH_POOL_SIZE', 100);
const demand = env('BENCH_DEMAND', 1.2);

type Figure = { value: number | null; unit: string; method?: string; why?: string };

function figuresOf(r: FleetReport, what: string): Record<string, Figure> {
  const ratio = (value: number | null, method: string, why: string): Figure => (value === null ? { value: null, unit: '0..1', why } : { value, unit: '0..1', method });
  return {
    'week1000.harvest_ratio': ratio(r.harvest.ratio, `${what}: idle night PC-hours (19:00–07:00, owner away) used by batch / available with demand present (at most the PCs the running plus queued work could fill), sampled every 5 simulated minutes: ${r.harvest.usedPcHours} of ${r.harvest.availablePcHours}`, 'no night PC-hours with batch demand in the window'),
    'week1000.energy_saved_ratio': ratio(r.energy.savedRatio, `${what}: 1 − office energy / always-on energy over the window; per-state power asleep ${r.energy.powerWatts.asleep} W, on ${r.energy.powerWatts.pcIdle} W, + ${r.energy.powerWatts.desktop} W per running desktop, + ${r.energy.powerWatts.batchCore} W per busy batch core; a PC running only batch is charged to batch (${r.energy.batchKWh} kWh), always-on = every PC on with its desktop running; counting batch too: ${r.energy.savedRatioInclBatch}`, 'no energy recorded'),
    'week1000.instant_morning_ratio': ratio(r.mornings.instantRatio, `${what}: arrivals whose desktop was already running at their first tap: ${r.mornings.instant} of ${r.mornings.count}`, 'no arrivals in the window'),
    'week1000.morning_wait_s.p99': r.mornings.waitS.p99 === null ? { value: null, unit: 's', why: 'no arrivals got their desktop in the window' } : { value: r.mornings.waitS.p99, unit: 's', method: `${what}: simulated seconds from first tap to desktop running there, p99 over ${r.mornings.count} arrivals (p50 ${r.mornings.waitS.p50}, max ${r.mornings.waitS.max}); at ${r.run.speed}x every real millisecond the control plane queues is ${(r.run.speed / 1000).toFixed(2)} simulated s` },
    'week1000.prestage_precision': ratio(r.preStaging.precision, `${what}: pre-stagings (desktop restored at its own PC before the person came in) the person used: ${r.preStaging.hits} of ${r.preStaging.stagings}`, 'no pre-staging happened'),
    'week1000.event_handle_ms.p99': r.controlPlane.handleMsP99 === null ? { value: null, unit: 'ms', why: 'no events' } : { value: r.controlPlane.handleMsP99, unit: 'ms', method: `${what}: real ms a scheduler worker spent per event (lock, snapshot, plan, commit, dispatch), p99 of ${r.controlPlane.events}; queue wait p99 ${r.controlPlane.queueMsP99} ms` },
  };
}

function write(figures: Record<string, Figure>): void {
  const dir = path.join(repoRoot, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'week1000.json');
  const tmp = path.join(dir, 'week1000.tmp.json');
  writeFileSync(tmp, `${JSON.stringify({ date: new Date().toISOString(), machine: `${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, load ${os.loadavg()[0]?.toFixed(1)} at the end`, figures }, null, 2)}\n`);
  renameSync(tmp, file);
  process.stdout.write(`wrote ${file}\n`);
}

async function main(): Promise<void> {
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
    const what =
      `${pcs} PCs (${Math.ceil(pcs / poolSize)} pools), real API + scheduler runtime + ${pcs} agents over WebSockets in one process, simulated hypervisors; ` +
      `${hours} simulated hours (${r.window.from.slice(0, 16)} → ${r.window.until.slice(0, 16)} UTC: evening, night and morning, not a whole week) at ${speed}x, ` +
      `${Math.round((performance.now() - startedAt) / 1000)} s real; seeded presence, batch demand ${demand}× night capacity`;
    write(figuresOf(r, what));
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
