// Pure logic of the benchmark harness: target parsing, merging package result files into
// bench/results/latest.json, and rendering BENCHMARKS.md. No I/O here (scripts/bench*.mjs do it).
import { z } from 'zod';

const OPERATORS = ['<=', '>=', '==', '<', '>'];

/**
 * "<= 20" → { op: '<=', value: 20 }; null, "", "—" or "-" → null (the figure has no target).
 * Anything else is a mistake in the catalogue and throws.
 */
export function parseTarget(text) {
  if (text === null || text === undefined) return null;
  const trimmed = String(text).trim();
  if (trimmed === '' || trimmed === '—' || trimmed === '-') return null;
  const match = /^(<=|>=|==|<|>)\s*(-?\d+(?:\.\d+)?(?:e-?\d+)?)$/i.exec(trimmed);
  if (!match) throw new Error(`bad target "${text}": expected one of ${OPERATORS.join(' ')} followed by a number, e.g. "<= 20"`);
  return { op: match[1], value: Number(match[2]) };
}

/** 'met' | 'not met' | 'not measured' | 'no target'. */
export function evaluateTarget(value, targetText) {
  const target = parseTarget(targetText);
  if (value === null || value === undefined) return 'not measured';
  if (!target) return 'no target';
  const ok = {
    '<=': value <= target.value,
    '>=': value >= target.value,
    '==': value === target.value,
    '<': value < target.value,
    '>': value > target.value,
  }[target.op];
  return ok ? 'met' : 'not met';
}

const baselineSchema = z.union([z.object({ name: z.string(), value: z.number().nullable() }).passthrough(), z.number()]);
const resultFigureSchema = z
  .object({
    value: z.number().finite().nullable(),
    unit: z.string().optional(),
    target: z.string().nullable().optional(),
    method: z.string().optional(),
    baseline: baselineSchema.optional(),
    why: z.string().optional(),
    date: z.string().optional(),
  })
  .passthrough();

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Reads one result file's parsed JSON. Two shapes are accepted, as written by the package benches:
 * `{ date?, machine?, figures: { <name>: figure } }` or a flat `{ <name>: figure }` (top-level
 * `date`/`machine` strings allowed beside the figures). A figure entry that is malformed, or null
 * without a why, does not void the file: it becomes null with the problem as its why.
 * Returns { ok: true, data: { date?, machine?, figures } } or { ok: false, error }.
 */
export function checkResultFile(raw) {
  if (!isObject(raw)) return { ok: false, error: '(root): expected a JSON object' };
  let entries;
  if ('figures' in raw) {
    if (!isObject(raw.figures)) return { ok: false, error: 'figures: expected an object of figures' };
    entries = raw.figures;
  } else {
    entries = Object.fromEntries(Object.entries(raw).filter(([key]) => key !== 'date' && key !== 'machine'));
  }
  if (Object.keys(entries).length === 0) return { ok: false, error: 'no figures in the file' };
  const figures = {};
  for (const [name, entry] of Object.entries(entries)) {
    const parsed = resultFigureSchema.safeParse(entry);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      figures[name] = { value: null, why: `its bench wrote an invalid entry (${[name, ...issue.path].join('.')}: ${issue.message})` };
    } else if (parsed.data.value === null && !parsed.data.why) {
      figures[name] = { ...parsed.data, why: 'its bench reported no value and gave no reason' };
    } else {
      figures[name] = parsed.data;
    }
  }
  const data = { figures };
  if (typeof raw.date === 'string') data.date = raw.date;
  if (typeof raw.machine === 'string') data.machine = raw.machine;
  return { ok: true, data };
}

/**
 * Builds latest.json.
 * - catalogue: [{ name, unit, target, what }] (bench/figures.json)
 * - sources: [{ file, owner, mtime, data }] valid result files (owner = package that wrote it, if known)
 * - benches: [{ package, status: 'ok' | 'failed' | 'timeout', error?, durationMs }] this run's benches
 * - earlierRun: { at, benches } of the last run that ran benches (for a merge-only run)
 * - problems: [{ file, error }] result files that could not be read or failed validation
 * Every catalogue figure is present. A figure from a file written by a bench that failed this run
 * is null with that failure as why; among several sources, the newest date wins.
 */
export function mergeResults({ catalogue, sources, benches = [], earlierRun = null, problems = [], date, machine }) {
  const failedBy = new Map(benches.filter((b) => b.status !== 'ok').map((b) => [b.package, b]));
  // A merge-only run must not bring back what a failed bench left behind in the last real run.
  const failedEarlier = new Map((earlierRun?.benches ?? []).filter((b) => b.status !== 'ok').map((b) => [b.package, b]));
  const failureOf = (source) => {
    if (!source.owner) return undefined;
    const now = failedBy.get(source.owner);
    if (now) return { bench: now, when: 'in this run' };
    const earlier = failedEarlier.get(source.owner);
    if (earlier && (!source.mtime || source.mtime <= earlierRun.at)) return { bench: earlier, when: `in the run of ${earlierRun.at}` };
    return undefined;
  };
  const candidates = new Map();
  for (const source of sources) {
    const failure = failureOf(source);
    for (const [name, figure] of Object.entries(source.data.figures)) {
      const figureDate = figure.date ?? source.data.date ?? source.mtime;
      const entry = failure
        ? { value: null, unit: figure.unit, method: figure.method, why: `bench of ${failure.bench.package} ${failure.bench.status === 'timeout' ? 'timed out' : 'failed'} ${failure.when}: ${failure.bench.error ?? 'no detail'}`, date }
        : { ...figure, date: figureDate };
      entry.source = source.file;
      const previous = candidates.get(name);
      if (!previous || String(entry.date ?? '') >= String(previous.date ?? '')) candidates.set(name, entry);
    }
  }

  const unmeasuredWhy = () => {
    const parts = ['not measured: no bench reported this figure'];
    if (failedBy.size > 0) parts.push(`benches that failed in this run: ${[...failedBy.values()].map((b) => `${b.package} (${b.error ?? b.status})`).join('; ')}`);
    if (problems.length > 0) parts.push(`unreadable result files: ${problems.map((p) => `${p.file} (${p.error})`).join('; ')}`);
    return parts.join('; ');
  };

  const figures = {};
  for (const entry of catalogue) {
    parseTarget(entry.target); // a typo in the catalogue must fail loudly, not evaluate wrongly
    const found = candidates.get(entry.name);
    candidates.delete(entry.name);
    let chosen = found ?? { value: null, why: unmeasuredWhy(), date };
    if (chosen.value !== null && chosen.unit && chosen.unit !== entry.unit) {
      // A number in the wrong unit would compare against the target wrongly; refuse it.
      chosen = { ...chosen, value: null, why: `bench reported unit "${chosen.unit}" but this figure is in "${entry.unit}"` };
    }
    figures[entry.name] = finishFigure(chosen, { unit: entry.unit, target: entry.target ?? null, what: entry.what });
  }
  // Figures the catalogue does not name ("add more as you like") follow in name order.
  for (const name of [...candidates.keys()].sort()) {
    const found = candidates.get(name);
    figures[name] = finishFigure(found, { unit: found.unit ?? '', target: found.target ?? null, what: undefined });
  }
  return { date, machine, figures, benches, problems };
}

function finishFigure(found, { unit, target, what }) {
  const figure = {
    value: found.value,
    unit: unit || found.unit || '',
    target,
    method: found.method ?? (found.value === null ? '' : 'not described by its bench'),
  };
  if (found.baseline) figure.baseline = found.baseline;
  if (found.value === null) figure.why = found.why ?? 'not measured';
  figure.status = evaluateTarget(found.value, target);
  if (found.date) figure.date = found.date;
  if (found.source) figure.source = found.source;
  if (what) figure.what = what;
  return figure;
}

function formatValue(value) {
  if (value === null || value === undefined) return '—';
  if (Number.isInteger(value)) return String(value);
  const abs = Math.abs(value);
  return abs >= 100 ? value.toFixed(0) : abs >= 1 ? value.toFixed(2) : value.toPrecision(3);
}

function benchLine(b) {
  const duration = b.durationMs !== undefined ? ` in ${(b.durationMs / 1000).toFixed(1)} s` : '';
  return `- \`${b.package}\`: ${b.status}${duration}${b.load ? ` (load average ${b.load})` : ''}${b.error ? ` — ${escapeCell(b.error)}` : ''}`;
}

function formatBaseline(baseline) {
  if (typeof baseline === 'number') return ` (baseline: ${formatValue(baseline)})`;
  if (isObject(baseline)) return ` (baseline: ${escapeCell(baseline.name)} = ${formatValue(baseline.value)})`;
  return '';
}

function escapeCell(text) {
  return String(text ?? '').replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
}

const STATUS_TEXT = { met: 'met', 'not met': '**not met**', 'not measured': 'not measured', 'no target': '—' };

/** BENCHMARKS.md from latest.json (plus machine details for the notes). */
export function renderMarkdown(latest, { machineDetails = [] } = {}) {
  const rows = Object.entries(latest.figures).map(([name, f]) => {
    const method = f.value === null ? `not measured: ${escapeCell(f.why).replace(/^not measured: /, '')}` : escapeCell(f.method) + formatBaseline(f.baseline);
    return `| \`${name}\` | ${formatValue(f.value)} | ${escapeCell(f.unit)} | ${escapeCell(f.target ?? '—')} | ${STATUS_TEXT[f.status] ?? f.status} | ${method} | ${escapeCell((f.date ?? '').slice(0, 10))} |`;
  });
  const counts = Object.values(latest.figures).reduce((acc, f) => ({ ...acc, [f.status]: (acc[f.status] ?? 0) + 1 }), {});
  const benchLines = (latest.benches ?? []).map(benchLine);
  const problemLines = (latest.problems ?? []).map((p) => `- \`${p.file}\`: ${escapeCell(p.error)}`);
  return [
    '# Benchmarks',
    '',
    `Generated by \`npm run bench\` (scripts/bench.mjs → bench/results/latest.json → scripts/bench-report.mjs) on ${latest.date}.`,
    'Do not edit by hand: rerun the benches instead.',
    '',
    `Machine: ${latest.machine}`,
    '',
    `Summary: ${counts.met ?? 0} met, ${counts['not met'] ?? 0} not met, ${counts['not measured'] ?? 0} not measured, ${counts['no target'] ?? 0} measured without a target.`,
    '',
    '| figure | value | unit | target | status | method | date |',
    '|---|---|---|---|---|---|---|',
    ...rows,
    '',
    '## Machine',
    '',
    ...(machineDetails.length > 0 ? machineDetails.map((d) => `- ${d}`) : [`- ${latest.machine}`]),
    '',
    '## Method',
    '',
    '- Each package with a `bench` script in its package.json is run in turn (`npm run bench -w <package>`); each writes',
    '  `bench/results/<name>.json` as `{ date, machine, figures: { <name>: { value, unit, method, baseline?, why? } } }`.',
    '- Timings are medians of several runs unless the name says p99. Where a figure is an overhead, the baseline',
    '  (e.g. raw `virsh`) was run in the same process and run, and the figure is the difference.',
    '- A bench that fails or times out does not stop the others: the figures it wrote are reported as not measured,',
    '  with its error. A figure no bench reports is listed as not measured, never left out or estimated.',
    '- The machine may be shared with other work while benches run: each bench below lists the load average before → after;',
    '  high load inflates timings and deflates rates, so compare figures of runs made under similar load.',
    '- "date" is when the figure was measured; figures from result files not rewritten in this run keep their older date.',
    '',
    '## Benches in this run',
    '',
    ...(benchLines.length > 0 ? benchLines : ['- none ran (merge only, or no package has a `bench` script yet)']),
    ...(benchLines.length === 0 && latest.previousBenches
      ? ['', `The last run that ran benches (${latest.previousBenches.at}):`, '', ...latest.previousBenches.benches.map(benchLine)]
      : []),
    ...(problemLines.length > 0 ? ['', '## Result files that could not be used', '', ...problemLines] : []),
    '',
  ].join('\n');
}
