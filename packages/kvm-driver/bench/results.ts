// The kvm benches' shared result file: each bench merges its figures into bench/results/kvm.json
// (read-modify-write through a temporary file), keeping the figures the other bench wrote.
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
