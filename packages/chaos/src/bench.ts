#!/usr/bin/env node
// npm run bench -w @deskpool/chaos: the long form (≥ 50 faults), written to
// bench/results/chaos.json as chaos.faults_injected and chaos.invariant_violations.
// `--seeds 21,22` plays several seeds side by side (each its own services and processes); the
// figures are then the fewest faults any run injected and the violations of all runs together,
// and every run is listed with its seed, faults, violations and replay command.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseChaosArgs, type ChaosOptions } from './options.js';
import { formatReport, replayCommand } from './report.js';
import { runChaos, type ChaosResult } from './run.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** Splits `--seeds a,b` off the other flags. */
function seedsOf(argv: readonly string[]): { seeds: number[] | null; rest: string[] } {
  const rest: string[] = [];
  let seeds: number[] | null = null;
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] ?? '';
    const value = arg === '--seeds' ? argv[++i] : arg.startsWith('--seeds=') ? arg.slice('--seeds='.length) : undefined;
    if (value === undefined) {
      rest.push(arg);
      continue;
    }
    seeds = value.split(',').map((s) => Number(s.trim()));
    if (seeds.length === 0 || seeds.some((s) => !Number.isInteger(s) || s < 0)) throw new Error(`--seeds: a comma-separated list of non-negative integers, not "${value}"`);
  }
  return { seeds, rest };
}

async function main(): Promise<void> {
  const { seeds, rest } = seedsOf(process.argv.slice(2));
  const base = parseChaosArgs(['--faults', '50', '--pcs', '200', '--seed', '11', ...rest]);
  const runs: ChaosOptions[] = (seeds ?? [base.seed]).map((seed) => ({ ...base, seed }));
  const out = path.join(REPO, 'bench/results/chaos.json');
  let figures: Record<string, unknown>;
  let detail: Record<string, unknown>[] = [];
  try {
    const results: ChaosResult[] = await Promise.all(runs.map((o) => runChaos(o, { print: (line) => process.stdout.write(`[seed ${o.seed}] ${line}\n`) })));
    for (const r of results) process.stdout.write(`${formatReport(r)}\n`);
    const injected = (r: ChaosResult): number => r.faults.filter((f) => !f.error).length;
    const method = `${results.length === 1 ? 'one chaos run' : `${results.length} chaos runs side by side (fewest faults injected by any run; violations of all runs)`}: seeds ${results.map((r) => r.seed).join(', ')}, ${base.pcs} simulated PCs each in ${base.fleets} agent processes, 2 API + 2 worker processes, own PostgreSQL and Redis; ${Math.max(...results.map((r) => r.stats.runSeconds))} s real time`;
    const violations = results.flatMap((r) => r.violations.map((v) => `seed ${r.seed}: [${v.invariant}] ${v.message}`));
    figures = {
      'chaos.faults_injected': { value: Math.min(...results.map(injected)), unit: 'count', method },
      'chaos.invariant_violations': { value: violations.length, unit: 'count', method, ...(violations.length ? { violations: violations.slice(0, 20) } : {}) },
    };
    detail = results.map((r) => ({
      seed: r.seed,
      faultsInjected: injected(r),
      faultsByKind: r.faults.reduce<Record<string, number>>((m, f) => ({ ...m, [f.fault.kind]: (m[f.fault.kind] ?? 0) + 1 }), {}),
      violations: r.violations.length,
      taskStates: r.stats.taskStates,
      runSeconds: r.stats.runSeconds,
      replay: replayCommand(r.seed, r.options),
    }));
  } catch (err) {
    const why = `the chaos run could not complete: ${(err as Error).message}`;
    figures = { 'chaos.faults_injected': { value: null, why }, 'chaos.invariant_violations': { value: null, why } };
  }
  await fs.mkdir(path.dirname(out), { recursive: true });
  await fs.writeFile(`${out}.tmp.json`, `${JSON.stringify({ date: new Date().toISOString(), machine: `${os.cpus().length} cores, load ${os.loadavg()[0]?.toFixed(1)} at the end`, figures, runs: detail }, null, 2)}\n`);
  await fs.rename(`${out}.tmp.json`, out);
}

main().catch((err: unknown) => {
  process.stderr.write(`chaos bench: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
