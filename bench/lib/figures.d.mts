// Types for figures.mjs, so TypeScript tests can import the harness logic.
export interface Target {
  op: '<=' | '>=' | '==' | '<' | '>';
  value: number;
}
export type TargetStatus = 'met' | 'not met' | 'not measured' | 'no target';
export function parseTarget(text: string | null | undefined): Target | null;
export function evaluateTarget(value: number | null | undefined, targetText: string | null | undefined): TargetStatus;

export interface ResultFigure {
  value: number | null;
  unit?: string;
  target?: string | null;
  method?: string;
  baseline?: { name: string; value: number | null; [key: string]: unknown } | number;
  why?: string;
  date?: string;
  [key: string]: unknown;
}
export interface ResultFile {
  date?: string;
  machine?: string;
  figures: Record<string, ResultFigure>;
}
export function checkResultFile(raw: unknown): { ok: true; data: ResultFile } | { ok: false; error: string };

export interface CatalogueEntry {
  name: string;
  unit: string;
  target: string | null;
  what: string;
}
export interface Source {
  file: string;
  owner?: string;
  mtime?: string;
  data: ResultFile;
}
export interface BenchRun {
  package: string;
  status: 'ok' | 'failed' | 'timeout';
  error?: string;
  durationMs?: number;
  /** 1-minute load average before → after the bench, e.g. "0.4 → 1.9 on 2 cores". */
  load?: string;
}
export interface MergedFigure {
  value: number | null;
  unit: string;
  target: string | null;
  method: string;
  baseline?: { name: string; value: number | null } | number;
  why?: string;
  status: TargetStatus;
  date?: string;
  source?: string;
  what?: string;
}
export interface Latest {
  date: string;
  machine: string;
  figures: Record<string, MergedFigure>;
  benches: BenchRun[];
  problems: Array<{ file: string; error: string }>;
  /** Set by a merge-only run: the benches of the last run that ran them. */
  previousBenches?: { at: string; benches: BenchRun[] };
}
export function mergeResults(input: {
  catalogue: CatalogueEntry[];
  sources: Source[];
  benches?: BenchRun[];
  earlierRun?: { at: string; benches: BenchRun[] } | null;
  problems?: Array<{ file: string; error: string }>;
  date: string;
  machine: string;
}): Latest;
export function renderMarkdown(latest: Latest, options?: { machineDetails?: string[] }): string;
