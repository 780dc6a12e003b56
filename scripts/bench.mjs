#!/usr/bin/env node
// `npm run bench`: runs each workspace package's `bench` script in turn, merges the result files
// they write (bench/results/*.json) into bench/results/latest.json, then writes BENCHMARKS.md.
// A bench that fails or times out does not stop the others; its figures are reported as null
// with the error as why. Usage:
//   node scripts/bench.mjs [--only kvm-driver,scheduler] [--merge-only] [--timeout SECONDS] [--root DIR]
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { checkResultFile, mergeResults } from '../bench/lib/figures.mjs';
import { writeReport } from './bench-report.mjs';

// --root lets the harness's own test run it on a scratch repository.
let root = join(dirname(fileURLToPath(import.meta.url)), '..');
let resultsDir = join(root, 'bench', 'results');
let latestPath = join(resultsDir, 'latest.json');

export function describeMachine() {
  const cores = cpus().length;
  const memGiB = Math.round(totalmem() / 2 ** 30);
  const kvmModules = readText('/proc/modules')
    .split('\n')
    .map((line) => line.split(' ')[0])
    .filter((name) => name && name.startsWith('kvm'));
  const kvm = existsSync('/dev/kvm') ? `KVM${kvmModules.length ? ` (${kvmModules.join(', ')})` : ''}` : 'no KVM';
  const summary = `${cores} cores, ${memGiB} GiB, ${kvm}`;
  const osName = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readText('/etc/os-release'))?.[1] ?? 'unknown OS';
  const details = [
    `CPU: ${cores} × ${cpus()[0]?.model ?? 'unknown model'}`,
    `memory: ${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    `OS: ${osName}, kernel ${release()}`,
    `hypervisor: ${kvm}${kvmModules.includes('kvm_pvm') ? ' — a nested KVM variant that cannot boot a stock guest, so guests in the kvm.* and desktop.* benches run under QEMU TCG emulation; absolute times are slower than on real office PCs' : ''}`,
    `Node ${process.version}`,
  ];
  return { summary, details };
}

function readText(path) {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function workspacesWithBench(only) {
  const rootPkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  return (rootPkg.workspaces ?? [])
    .map((dir) => ({ dir, pkg: JSON.parse(readText(join(root, dir, 'package.json')) || '{}') }))
    .filter(({ pkg }) => typeof pkg.scripts?.bench === 'string')
    .filter(({ dir }) => !only || only.includes(basename(dir)) || only.includes(dir))
    .map(({ dir, pkg }) => ({ dir, name: pkg.name ?? dir }));
}

/** Runs one package's bench in its own process group so a timeout can stop all of it. */
function runBench(dir, timeoutMs) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn('npm', ['run', 'bench', '--workspace', dir], { cwd: root, stdio: ['ignore', 'inherit', 'pipe'], detached: true });
    let stderrTail = '';
    child.stderr.on('data', (chunk) => {
      process.stderr.write(chunk);
      stderrTail = (stderrTail + chunk.toString()).slice(-4000);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ status: 'failed', error: error.message, durationMs: Date.now() - started });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const durationMs = Date.now() - started;
      if (timedOut) return resolve({ status: 'timeout', error: `stopped after ${timeoutMs / 1000} s`, durationMs });
      if (code === 0) return resolve({ status: 'ok', durationMs });
      const lastLines = stderrTail.trim().split('\n').filter((l) => !/^npm (ERR!|error)/.test(l)).slice(-3).join(' / ');
      resolve({ status: 'failed', error: `exit ${code ?? signal}${lastLines ? `: ${lastLines}` : ''}`.slice(0, 600), durationMs });
    });
  });
}

/** Result files, each attributed to the package that wrote it (this run, else the last run's record). */
export function readResultFiles(runs, previousOwners) {
  const sources = [];
  const problems = [];
  const files = existsSync(resultsDir) ? readdirSync(resultsDir).filter((f) => f.endsWith('.json') && f !== 'latest.json' && !f.endsWith('.tmp.json')).sort() : [];
  for (const name of files) {
    const path = join(resultsDir, name);
    const file = relative(root, path);
    const mtimeMs = statSync(path).mtimeMs;
    // Benches run one after another, so the latest-started run whose window holds the file's
    // mtime wrote it (100 ms slack for timestamp rounding).
    const writer = runs.filter((r) => mtimeMs >= r.startedAt - 100 && mtimeMs <= r.endedAt + 100).at(-1);
    const owner = writer?.package ?? previousOwners[file];
    let raw;
    try {
      raw = JSON.parse(readFileSync(path, 'utf8'));
    } catch (e) {
      problems.push({ file, error: `not valid JSON: ${e.message}` });
      continue;
    }
    const checked = checkResultFile(raw);
    if (!checked.ok) {
      problems.push({ file, error: checked.error });
      continue;
    }
    sources.push({ file, owner, mtime: new Date(mtimeMs).toISOString(), data: checked.data });
  }
  return { sources, problems };
}

async function main() {
  const { values } = parseArgs({ options: { only: { type: 'string' }, 'merge-only': { type: 'boolean' }, timeout: { type: 'string' }, root: { type: 'string' } } });
  if (values.root) {
    root = values.root;
    resultsDir = join(root, 'bench', 'results');
    latestPath = join(resultsDir, 'latest.json');
  }
  const timeoutMs = Number(values.timeout ?? process.env.DESKPOOL_BENCH_TIMEOUT_S ?? 1800) * 1000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    console.error('error: --timeout must be a positive number of seconds');
    process.exit(2);
  }
  const only = values.only?.split(',').map((s) => s.trim()).filter(Boolean);
  const catalogue = JSON.parse(readFileSync(join(root, 'bench', 'figures.json'), 'utf8')).figures;
  const previous = JSON.parse(readText(latestPath) || '{}');

  const runs = [];
  if (!values['merge-only']) {
    const benches = workspacesWithBench(only);
    if (benches.length === 0) console.error('bench: no workspace package has a "bench" script yet; merging existing result files only');
    for (const { dir } of benches) {
      console.error(`\nbench: ${dir} …`);
      const startedAt = Date.now();
      // Load before/after: on a shared machine other work inflates timings, and the report says so.
      const loadBefore = loadavg()[0];
      const outcome = await runBench(dir, timeoutMs);
      const load = `${loadBefore.toFixed(1)} → ${loadavg()[0].toFixed(1)} on ${cpus().length} cores`;
      runs.push({ package: dir, ...outcome, load, startedAt, endedAt: Date.now() });
      console.error(`bench: ${dir} ${outcome.status} in ${(outcome.durationMs / 1000).toFixed(1)} s${outcome.error ? ` (${outcome.error})` : ''}`);
    }
  }

  const { sources, problems } = readResultFiles(runs, previous.sourceOwners ?? {});
  const machine = describeMachine();
  // A merge-only run keeps the record of the last run that did run benches (report + voiding).
  const carried = previous.benches?.length ? { at: previous.date, benches: previous.benches } : (previous.previousBenches ?? null);
  const latest = mergeResults({
    catalogue,
    sources,
    benches: runs.map(({ package: pkg, status, error, durationMs, load }) => ({ package: pkg, status, ...(error ? { error } : {}), durationMs, load })),
    earlierRun: runs.length === 0 ? carried : null,
    problems,
    date: new Date().toISOString(),
    machine: machine.summary,
  });
  latest.machineDetails = machine.details;
  if (runs.length === 0 && carried) latest.previousBenches = carried;
  // Remembered so that a later failing run of a package can void the figures it wrote before.
  latest.sourceOwners = { ...(previous.sourceOwners ?? {}), ...Object.fromEntries(sources.filter((s) => s.owner).map((s) => [s.file, s.owner])) };

  mkdirSync(resultsDir, { recursive: true });
  const tmp = `${latestPath.replace(/\.json$/, '')}.${process.pid}.tmp.json`;
  writeFileSync(tmp, `${JSON.stringify(latest, null, 2)}\n`);
  renameSync(tmp, latestPath);
  const reportPath = writeReport(latestPath, join(root, 'BENCHMARKS.md'));
  const figures = Object.values(latest.figures);
  console.error(`\nbench: wrote ${relative(root, latestPath)} and ${relative(root, reportPath)}: ${figures.filter((f) => f.value !== null).length}/${figures.length} figures measured, ${figures.filter((f) => f.status === 'not met').length} targets not met`);
  process.exitCode = runs.some((r) => r.status !== 'ok') ? 1 : 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
