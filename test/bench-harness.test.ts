import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { CatalogueEntry, Latest } from '../bench/lib/figures.mjs';
import { checkResultFile, evaluateTarget, mergeResults, parseTarget, renderMarkdown } from '../bench/lib/figures.mjs';

const run = promisify(execFile);
const catalogueFile = JSON.parse(readFileSync(new URL('../bench/figures.json', import.meta.url), 'utf8')) as { figures: CatalogueEntry[] };

describe('targets', () => {
  it('parses the catalogue forms', () => {
    expect(parseTarget('<= 20')).toEqual({ op: '<=', value: 20 });
    expect(parseTarget('>= 0.95')).toEqual({ op: '>=', value: 0.95 });
    expect(parseTarget('== 0')).toEqual({ op: '==', value: 0 });
    expect(parseTarget('>=10000')).toEqual({ op: '>=', value: 10000 });
    expect(parseTarget('—')).toBeNull();
    expect(parseTarget(null)).toBeNull();
  });
  it('refuses anything else', () => {
    expect(() => parseTarget('about 20')).toThrow(/bad target "about 20"/);
    expect(() => parseTarget('=< 5')).toThrow(/bad target/);
  });
  it('judges values against targets, and null as not measured', () => {
    expect(evaluateTarget(20, '<= 20')).toBe('met');
    expect(evaluateTarget(20.5, '<= 20')).toBe('not met');
    expect(evaluateTarget(0.95, '>= 0.95')).toBe('met');
    expect(evaluateTarget(0.949, '>= 0.95')).toBe('not met');
    expect(evaluateTarget(0, '== 0')).toBe('met');
    expect(evaluateTarget(1, '== 0')).toBe('not met');
    expect(evaluateTarget(null, '== 0')).toBe('not measured');
    expect(evaluateTarget(812, null)).toBe('no target');
  });
  it('every target in the figure catalogue parses', () => {
    expect(catalogueFile.figures).toHaveLength(22);
    for (const figure of catalogueFile.figures) expect(() => parseTarget(figure.target)).not.toThrow();
  });
});

describe('result files', () => {
  it('accepts { figures: {...} } and the flat { <name>: figure } shape', () => {
    const wrapped = checkResultFile({ date: '2026-11-26T10:00:00Z', figures: { 'kvm.restore_ms.128MiB': { value: 812, unit: 'ms', method: 'median of 5' } } });
    expect(wrapped).toEqual({ ok: true, data: { date: '2026-11-26T10:00:00Z', figures: { 'kvm.restore_ms.128MiB': { value: 812, unit: 'ms', method: 'median of 5' } } } });
    const flat = checkResultFile({ date: '2026-11-26T10:00:00Z', 'batch.core_placements_per_s.10k_hosts': { value: 50000, unit: '1/s', target: '>= 10000', method: 'median' } });
    expect(flat).toEqual({ ok: true, data: { date: '2026-11-26T10:00:00Z', figures: { 'batch.core_placements_per_s.10k_hosts': { value: 50000, unit: '1/s', target: '>= 10000', method: 'median' } } } });
  });
  it('turns a malformed or unexplained entry into null with the problem as why, keeping the rest', () => {
    const result = checkResultFile({ figures: { good: { value: 1 }, text: { value: '12' }, silent: { value: null } } });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.data.figures.good).toEqual({ value: 1 });
    expect(result.data.figures.text).toMatchObject({ value: null, why: expect.stringContaining('text.value') });
    expect(result.data.figures.silent).toEqual({ value: null, why: 'its bench reported no value and gave no reason' });
  });
  it('refuses files that hold no figures at all', () => {
    expect(checkResultFile([])).toEqual({ ok: false, error: '(root): expected a JSON object' });
    expect(checkResultFile({ figures: 3 })).toMatchObject({ ok: false, error: expect.stringContaining('figures') });
    expect(checkResultFile({ date: 'x' })).toEqual({ ok: false, error: 'no figures in the file' });
  });
});

describe('mergeResults', () => {
  const catalogue: CatalogueEntry[] = [
    { name: 'kvm.driver_overhead_ms.max', unit: 'ms', target: '<= 20', what: 'overhead' },
    { name: 'batch.e2e_placements_per_s', unit: '1/s', target: '>= 2000', what: 'e2e' },
    { name: 'chaos.invariant_violations', unit: 'count', target: '== 0', what: 'violations' },
    { name: 'kvm.restore_ms.1GiB', unit: 'ms', target: null, what: 'restore' },
  ];
  const date = '2026-11-26T11:00:00.000Z';

  it('keeps every catalogue figure, with null and a why when nobody measured it', () => {
    const latest = mergeResults({ catalogue, sources: [], date, machine: 'm' });
    expect(Object.keys(latest.figures)).toEqual(catalogue.map((c) => c.name));
    for (const figure of Object.values(latest.figures)) {
      expect(figure.value).toBeNull();
      expect(figure.why).toMatch(/not measured/);
      expect(figure.status).toBe('not measured');
    }
    expect(latest.figures['kvm.driver_overhead_ms.max']).toMatchObject({ unit: 'ms', target: '<= 20' });
  });

  it('takes measured values with their method, baseline and date, and judges the target', () => {
    const latest = mergeResults({
      catalogue,
      date,
      machine: 'm',
      sources: [
        { file: 'bench/results/kvm.json', owner: 'packages/kvm-driver', data: { date: '2026-11-26T10:00:00Z', figures: { 'kvm.driver_overhead_ms.max': { value: 7.5, unit: 'ms', method: 'driver − virsh', baseline: { name: 'raw virsh restore', value: 280 } } } } },
        { file: 'bench/results/scheduler.json', owner: 'packages/scheduler', data: { figures: { 'batch.e2e_placements_per_s': { value: 1500, unit: '1/s', method: 'pg + bullmq' }, 'batch.extra_figure': { value: 3, unit: 'x', method: 'extra' } } } },
      ],
    });
    expect(latest.figures['kvm.driver_overhead_ms.max']).toMatchObject({ value: 7.5, status: 'met', method: 'driver − virsh', baseline: { name: 'raw virsh restore', value: 280 }, date: '2026-11-26T10:00:00Z', source: 'bench/results/kvm.json' });
    expect(latest.figures['batch.e2e_placements_per_s']).toMatchObject({ value: 1500, status: 'not met' });
    expect(latest.figures['batch.extra_figure']).toMatchObject({ value: 3, unit: 'x', status: 'no target' });
    expect(Object.keys(latest.figures).at(-1)).toBe('batch.extra_figure');
  });

  it('voids the figures of a bench that failed in this run, with its error, and leaves the others', () => {
    const latest = mergeResults({
      catalogue,
      date,
      machine: 'm',
      benches: [{ package: 'packages/kvm-driver', status: 'failed', error: 'exit 1: libvirtd not answering' }, { package: 'packages/chaos', status: 'ok' }],
      sources: [
        { file: 'bench/results/kvm.json', owner: 'packages/kvm-driver', data: { figures: { 'kvm.driver_overhead_ms.max': { value: 7.5, unit: 'ms' } } } },
        { file: 'bench/results/chaos.json', owner: 'packages/chaos', data: { figures: { 'chaos.invariant_violations': { value: 0, unit: 'count', method: 'one run' } } } },
      ],
    });
    expect(latest.figures['kvm.driver_overhead_ms.max']).toMatchObject({ value: null, status: 'not measured' });
    expect(latest.figures['kvm.driver_overhead_ms.max']!.why).toContain('libvirtd not answering');
    expect(latest.figures['chaos.invariant_violations']).toMatchObject({ value: 0, status: 'met' });
    expect(latest.figures['kvm.restore_ms.1GiB']!.why).toMatch(/benches that failed in this run: packages\/kvm-driver/);
  });

  it('prefers the newest of two sources and refuses a value in the wrong unit', () => {
    const latest = mergeResults({
      catalogue,
      date,
      machine: 'm',
      sources: [
        { file: 'a.json', data: { date: '2026-11-25T00:00:00Z', figures: { 'kvm.restore_ms.1GiB': { value: 900, unit: 'ms' } } } },
        { file: 'b.json', data: { date: '2026-11-26T00:00:00Z', figures: { 'kvm.restore_ms.1GiB': { value: 800, unit: 'ms' }, 'batch.e2e_placements_per_s': { value: 2.5, unit: '1/ms' } } } },
      ],
    });
    expect(latest.figures['kvm.restore_ms.1GiB']).toMatchObject({ value: 800, source: 'b.json' });
    expect(latest.figures['batch.e2e_placements_per_s']).toMatchObject({ value: null, why: expect.stringContaining('unit "1/ms"') });
  });

  it('mentions unreadable result files in the why of unmeasured figures', () => {
    const latest = mergeResults({ catalogue, sources: [], problems: [{ file: 'bench/results/bad.json', error: 'not valid JSON' }], date, machine: 'm' });
    expect(latest.figures['kvm.restore_ms.1GiB']!.why).toContain('bench/results/bad.json (not valid JSON)');
  });
});

describe('renderMarkdown', () => {
  it('writes one table row per figure with value, unit, target, status, method and date', () => {
    const latest: Latest = mergeResults({
      catalogue: [
        { name: 'kvm.driver_overhead_ms.max', unit: 'ms', target: '<= 20', what: 'x' },
        { name: 'fuzz.responses_5xx', unit: 'count', target: '== 0', what: 'y' },
        { name: 'week1000.harvest_ratio', unit: '0..1', target: '>= 0.95', what: 'z' },
      ],
      sources: [{ file: 'f.json', data: { date: '2026-11-26T10:00:00Z', figures: { 'kvm.driver_overhead_ms.max': { value: 31.25, unit: 'ms', method: 'a | b' }, 'fuzz.responses_5xx': { value: 0, unit: 'count', method: 'fuzzer' } } } }],
      benches: [{ package: 'packages/kvm-driver', status: 'ok', durationMs: 1500, load: '0.5 → 1.9 on 2 cores' }],
      date: '2026-11-26T11:00:00Z',
      machine: '2 cores, 24 GiB, no KVM',
    });
    const text = renderMarkdown(latest, { machineDetails: ['CPU: test'] });
    expect(text).toContain('| figure | value | unit | target | status | method | date |');
    expect(text).toContain('| `kvm.driver_overhead_ms.max` | 31.25 | ms | <= 20 | **not met** | a \\| b | 2026-11-26 |');
    expect(text).toContain('| `fuzz.responses_5xx` | 0 | count | == 0 | met | fuzzer | 2026-11-26 |');
    expect(text).toMatch(/\| `week1000.harvest_ratio` \| — \| 0\.\.1 \| >= 0\.95 \| not measured \| not measured: no bench reported this figure \|/);
    expect(text).toContain('Summary: 1 met, 1 not met, 1 not measured');
    expect(text).toContain('- CPU: test');
    expect(text).toContain('- `packages/kvm-driver`: ok in 1.5 s (load average 0.5 → 1.9 on 2 cores)');
  });
});

describe('renderMarkdown after a merge-only run', () => {
  it('shows the benches of the last run that ran them', () => {
    const latest = mergeResults({ catalogue: [], sources: [], date: '2026-11-26T12:00:00Z', machine: 'm' });
    latest.previousBenches = { at: '2026-11-26T11:00:00Z', benches: [{ package: 'packages/scheduler', status: 'failed', error: 'exit 1', durationMs: 2000 }] };
    const text = renderMarkdown(latest);
    expect(text).toContain('- none ran (merge only');
    expect(text).toContain('The last run that ran benches (2026-11-26T11:00:00Z):\n\n- `packages/scheduler`: failed in 2.0 s — exit 1');
  });
});

describe('scripts/bench.mjs on a scratch repository', () => {
  it('runs every package bench, survives a failing one, and writes latest.json and BENCHMARKS.md', async () => {
    const root = mkdtempSync(join(tmpdir(), 'deskpool-bench-'));
    const writeJson = (path: string, value: unknown) => writeFileSync(join(root, path), JSON.stringify(value));
    mkdirSync(join(root, 'bench', 'results'), { recursive: true });
    mkdirSync(join(root, 'packages', 'good'), { recursive: true });
    mkdirSync(join(root, 'packages', 'broken'), { recursive: true });
    writeJson('package.json', { name: 'scratch', private: true, workspaces: ['packages/broken', 'packages/good'] });
    writeJson('bench/figures.json', { figures: [
      { name: 'good.ms', unit: 'ms', target: '<= 5', what: 'g' },
      { name: 'broken.count', unit: 'count', target: '== 0', what: 'b' },
    ] });
    // The broken package wrote a result in an earlier run; its failure now must void it.
    writeJson('bench/results/broken.json', { figures: { 'broken.count': { value: 0, unit: 'count' } } });
    writeJson('bench/results/latest.json', { sourceOwners: { 'bench/results/broken.json': 'packages/broken' } });
    const goodResult = JSON.stringify({ date: '2026-11-26T10:00:00Z', figures: { 'good.ms': { value: 4, unit: 'ms', method: 'median of 3' } } });
    writeJson('packages/good/package.json', { name: 'good', scripts: { bench: `node -e "require('fs').writeFileSync('../../bench/results/good.json', process.argv[1])" '${goodResult}'` } });
    writeJson('packages/broken/package.json', { name: 'broken', scripts: { bench: 'node -e "console.error(\'guest image missing\'); process.exit(4)"' } });

    const script = new URL('../scripts/bench.mjs', import.meta.url).pathname;
    const outcome = await run('node', [script, '--root', root, '--timeout', '60']).then(() => 0, (e: { code: number }) => e.code);
    expect(outcome).toBe(1); // a failed bench makes the run fail, after everything was written

    const latest = JSON.parse(readFileSync(join(root, 'bench', 'results', 'latest.json'), 'utf8')) as Latest;
    expect(latest.machine).toMatch(/^\d+ cores, \d+ GiB, /);
    expect(latest.figures['good.ms']).toMatchObject({ value: 4, status: 'met', method: 'median of 3' });
    expect(latest.figures['broken.count']).toMatchObject({ value: null, status: 'not measured' });
    expect(latest.figures['broken.count']!.why).toMatch(/packages\/broken failed in this run: exit 4: guest image missing/);
    expect(latest.benches.map((b) => [b.package, b.status])).toEqual([['packages/broken', 'failed'], ['packages/good', 'ok']]);
    const report = readFileSync(join(root, 'BENCHMARKS.md'), 'utf8');
    expect(report).toContain('| `good.ms` | 4 | ms | <= 5 | met | median of 3 | 2026-11-26 |');
    expect(report).toMatch(/- `packages\/broken`: failed in [\d.]+ s \(load average [\d.]+ → [\d.]+ on \d+ cores\) — exit 4/);

    // Merging again without running: the old figures stay, the failed bench's record is carried.
    await run('node', [script, '--root', root, '--merge-only']);
    const merged = JSON.parse(readFileSync(join(root, 'bench', 'results', 'latest.json'), 'utf8')) as Latest;
    expect(merged.benches).toEqual([]);
    expect(merged.previousBenches?.benches.map((b) => b.package)).toEqual(['packages/broken', 'packages/good']);
    expect(merged.figures['good.ms']).toMatchObject({ value: 4 });
    expect(merged.figures['broken.count']).toMatchObject({ value: null, why: expect.stringMatching(/packages\/broken failed in the run of .*: exit 4/) });
  });
});
