// What both kvm benches use: timing helpers, and the shared result file, into which each bench
// merges its figures (read-modify-write through a temporary file), keeping the other bench's.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CommandResult, CommandRunner, InteractiveProcess, RunOptions } from '../src/driver.js';
import { LocalCommandRunner } from '../src/runner.js';

export interface Figure {
  value: number | null;
  unit: string;
  target?: string | null;
  method?: string;
  baseline?: { name: string; value: number | null };
  why?: string;
}

export const kvmResultsFile = fileURLToPath(new URL('../../../bench/results/kvm.json', import.meta.url));

/** The virsh commands that do an operation's real work, each run by the driver as its own process. */
const JOB_COMMAND = /^(managedsave|start|save|restore|migrate)(\s|$)/;

/**
 * Times the virsh job commands the driver runs as their own processes, so the driver's own
 * cost in an operation is its total time minus the very virsh command it ran: a paired
 * difference, immune to how long this particular save, restore or migration happened to take.
 */
export class TimingRunner implements CommandRunner {
  readonly description = 'local (timed)';
  jobMs = 0;
  constructor(private readonly inner: CommandRunner = new LocalCommandRunner()) {}
  async run(argv: readonly string[], opts?: RunOptions): Promise<CommandResult> {
    // The driver runs `start` as one process with the state read after it (`start x ; domstate x`).
    const job = argv.some((a) => JOB_COMMAND.test(a));
    const t0 = performance.now();
    try {
      return await this.inner.run(argv, opts);
    } finally {
      if (job) this.jobMs += performance.now() - t0;
    }
  }
  stream(argv: readonly string[], opts: { signal: AbortSignal }): AsyncIterable<string> {
    if (!this.inner.stream) throw new Error('the inner runner cannot stream');
    return this.inner.stream(argv, opts);
  }
  interactive(argv: readonly string[]): InteractiveProcess {
    if (!this.inner.interactive) throw new Error('the inner runner cannot run an interactive process');
    return this.inner.interactive(argv);
  }
}

const OVERHEAD_PREFIX = 'kvm.driver_overhead_ms.';
const OVERHEAD_MAX = 'kvm.driver_overhead_ms.max';

/**
 * kvm.driver_overhead_ms.max is the worst of the per-operation overheads both benches write
 * (kvm.driver_overhead_ms.<operation>.<size>), so it is recomputed whenever either merges.
 */
export function withOverheadMax(figures: Record<string, Figure>): Record<string, Figure> {
  const parts = Object.entries(figures).filter(([k, v]) => k.startsWith(OVERHEAD_PREFIX) && k !== OVERHEAD_MAX && typeof v.value === 'number');
  const missing = ['suspend.128MiB', 'restore.128MiB', 'suspend.1GiB', 'restore.1GiB', 'save_move_restore.512MiB', 'live_migrate.512MiB'].filter(
    (op) => !parts.some(([k]) => k === `${OVERHEAD_PREFIX}${op}`),
  );
  if (!parts.length) return { ...figures, [OVERHEAD_MAX]: { value: null, unit: 'ms', target: '<= 20', why: 'no operation overhead could be measured' } };
  const [worstName, worst] = parts.reduce((w, p) => ((p[1].value ?? -Infinity) > (w[1].value ?? -Infinity) ? p : w));
  const list = parts.map(([k, v]) => `${k.slice(OVERHEAD_PREFIX.length)} ${v.value}`).join(', ');
  return {
    ...figures,
    [OVERHEAD_MAX]: {
      value: worst.value,
      unit: 'ms',
      target: '<= 20',
      method: `worst of the per-operation driver overheads measured (each a median of driver time minus the raw virsh/transfer time of the same operation, paired in the same run; see each kvm.driver_overhead_ms.<operation> figure): worst ${worstName.slice(OVERHEAD_PREFIX.length)}; all: ${list}${missing.length ? `; not measured: ${missing.join(', ')}` : ''}`,
    },
  };
}

/** Merges `figures` into the kvm results file and prints them, one line each. */
export async function writeKvmResults(figures: Record<string, Figure>, resultsFile = kvmResultsFile): Promise<void> {
  await mkdir(dirname(resultsFile), { recursive: true });
  let existing: { figures?: Record<string, unknown> } = {};
  try {
    existing = JSON.parse(await readFile(resultsFile, 'utf8')) as typeof existing;
  } catch {
    existing = {};
  }
  const date = new Date().toISOString();
  const mine = Object.fromEntries(Object.entries(figures).map(([k, v]) => [k, { ...v, date }]));
  const merged = withOverheadMax({ ...((existing.figures ?? {}) as Record<string, Figure>), ...mine });
  const out = { date, machine: 'see BENCHMARKS.md', figures: merged };
  const tmp = `${resultsFile}.${process.pid}.tmp.json`;
  await writeFile(tmp, `${JSON.stringify(out, null, 2)}\n`);
  await rename(tmp, resultsFile);
  for (const [k, v] of Object.entries({ ...figures, [OVERHEAD_MAX]: merged[OVERHEAD_MAX] ?? { value: null, unit: 'ms' } })) console.log(`${k}: ${v.value ?? 'null'} ${v.unit}${v.baseline ? ` (baseline ${v.baseline.value})` : ''}${v.why ? ` why: ${v.why}` : ''}`);
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? NaN) : ((s[m - 1] ?? NaN) + (s[m] ?? NaN)) / 2;
};

export const round = (x: number): number => Math.round(x * 10) / 10;

/** Wall time of `fn` in milliseconds. */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}
