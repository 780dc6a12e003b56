#!/usr/bin/env node
// npm run bench -w @deskpool/chaos: the long form (≥ 50 faults, a few hundred PCs), written
// to bench/results/chaos.json as chaos.faults_injected and chaos.invariant_violations.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseChaosArgs } from './options.js';
import { formatReport } from './report.js';
import { runChaos } from './run.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

async function main(): Promise<void> {
  const options = parseChaosArgs(['--faults', '50', '--pcs', '200', '--seed', '11', ...process.argv.slice(2)]);
  const out = path.join(REPO, 'bench/results/chaos.json');
  let figures: Record<string, unknown>;
  try {
    const r = await runChaos(options, { print: (line) => process.stdout.write(`${line}\n`) });
    process.stdout.write(`${formatReport(r)}\n`);
    const method = `one chaos run: seed ${r.seed}, ${r.stats.pcs} simulated PCs in ${options.fleets} agent processes, 2 API + 2 worker processes, own PostgreSQL and Redis; ${r.stats.runSeconds} s real time`;
    figures = {
      'chaos.faults_injected': { value: r.faults.filter((f) => !f.error).length, unit: 'count', method },
      'chaos.invariant_violations': { value: r.violations.length, unit: 'count', method, ...(r.violations.length ? { violations: r.violations.slice(0, 20).map((v) => `[${v.invariant}] ${v.message}`) } : {}) },
    };
  } catch (err) {
    const why = `the chaos run could not complete: ${(err as Error).message}`;
    figures = { 'chaos.faults_injected': { value: null, why }, 'chaos.invariant_violations': { value: null, why } };
  }
  await fs.mkdir(path.dirname(out), { recursive: true });
  await fs.writeFile(`${out}.tmp.json`, `${JSON.stringify({ date: new Date().toISOString(), machine: `${os.cpus().length} cores, load ${os.loadavg()[0]?.toFixed(1)} at the end`, figures }, null, 2)}\n`);
  await fs.rename(`${out}.tmp.json`, out);
}

main().catch((err: unknown) => {
  process.stderr.write(`chaos bench: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
