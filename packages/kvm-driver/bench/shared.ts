// What both kvm benches use: timing helpers, and the shared result file, into which each bench
// merges its figures (read-modify-write through a temporary file), keeping the other bench's.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Figure {
  value: number | null;
  unit: string;
  target?: string | null;
  method?: string;
  baseline?: { name: string; value: number | null };
  why?: string;
}

export const kvmResultsFile = fileURLToPath(new URL('../../../bench/results/kvm.json', import.meta.url));

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
  const out = { date, machine: 'see BENCHMARKS.md', figures: { ...(existing.figures ?? {}), ...mine } };
  const tmp = `${resultsFile}.${process.pid}.tmp.json`;
  await writeFile(tmp, `${JSON.stringify(out, null, 2)}\n`);
  await rename(tmp, resultsFile);
  for (const [k, v] of Object.entries(figures)) console.log(`${k}: ${v.value ?? 'null'} ${v.unit}${v.baseline ? ` (baseline ${v.baseline.value})` : ''}${v.why ? ` why: ${v.why}` : ''}`);
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
