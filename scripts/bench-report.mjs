#!/usr/bin/env node
// Writes BENCHMARKS.md from bench/results/latest.json (run by scripts/bench.mjs; also by hand:
// `node scripts/bench-report.mjs [latest.json] [BENCHMARKS.md]`).
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderMarkdown } from '../bench/lib/figures.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

export function writeReport(latestPath = join(root, 'bench', 'results', 'latest.json'), outPath = join(root, 'BENCHMARKS.md')) {
  const latest = JSON.parse(readFileSync(latestPath, 'utf8'));
  writeFileSync(outPath, renderMarkdown(latest, { machineDetails: latest.machineDetails ?? [] }));
  return outPath;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = writeReport(process.argv[2], process.argv[3]);
  console.error(`wrote ${out}`);
}
