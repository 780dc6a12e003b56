// The multi-day report as one self-contained HTML page: figures, then charts as inline SVG
// (PCs by state over time, power, batch cores busy and queued), then the latency table.
import type { FleetReport, TimelinePoint } from './fleet-report.js';

const W = 960;
const H = 220;
const PAD = { left: 56, right: 12, top: 12, bottom: 28 };

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fmt = (x: number | null | undefined, digits = 0): string => (x === null || x === undefined ? 'n/a' : x.toFixed(digits));
const pct = (x: number | null): string => (x === null ? 'n/a' : `${(x * 100).toFixed(1)}%`);

function axes(points: readonly TimelinePoint[], maxY: number, unit: string): string {
  const first = points[0]?.at ?? 0;
  const last = points[points.length - 1]?.at ?? first + 1;
  const x = (t: number): number => PAD.left + ((t - first) / Math.max(1, last - first)) * (W - PAD.left - PAD.right);
  const ticks: string[] = [];
  for (let t = Math.ceil(first / 86_400_000) * 86_400_000; t <= last; t += 86_400_000) {
    const label = new Date(t).toUTCString().slice(0, 3);
    ticks.push(`<line x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="${PAD.top}" y2="${H - PAD.bottom}" stroke="#ccc"/><text x="${(x(t) + 4).toFixed(1)}" y="${H - 10}" font-size="11">${label}</text>`);
  }
  return `${ticks.join('')}<text x="4" y="${PAD.top + 10}" font-size="11">${esc(fmt(maxY))}</text><text x="4" y="${H - PAD.bottom}" font-size="11">0</text><text x="4" y="${H / 2}" font-size="11">${esc(unit)}</text>`;
}

function scale(points: readonly TimelinePoint[], maxY: number) {
  const first = points[0]?.at ?? 0;
  const last = points[points.length - 1]?.at ?? first + 1;
  return {
    x: (t: number): number => PAD.left + ((t - first) / Math.max(1, last - first)) * (W - PAD.left - PAD.right),
    y: (v: number): number => H - PAD.bottom - (v / Math.max(1e-9, maxY)) * (H - PAD.top - PAD.bottom),
  };
}

/** Stacked areas, bottom to top in the order given. */
function stacked(points: readonly TimelinePoint[], series: { key: keyof TimelinePoint; label: string; colour: string }[], maxY: number): string {
  const { x, y } = scale(points, maxY);
  const base = points.map(() => 0);
  const areas: string[] = [];
  for (const s of series) {
    const top = points.map((p, i) => (base[i] ?? 0) + Number(p[s.key]));
    const upper = points.map((p, i) => `${x(p.at).toFixed(1)},${y(top[i] ?? 0).toFixed(1)}`);
    const lower = points.map((p, i) => `${x(p.at).toFixed(1)},${y(base[i] ?? 0).toFixed(1)}`).reverse();
    areas.push(`<polygon points="${[...upper, ...lower].join(' ')}" fill="${s.colour}" stroke="none"><title>${esc(s.label)}</title></polygon>`);
    top.forEach((v, i) => (base[i] = v));
  }
  return areas.join('');
}

function lines(points: readonly TimelinePoint[], series: { key: keyof TimelinePoint; label: string; colour: string }[], maxY: number): string {
  const { x, y } = scale(points, maxY);
  return series.map((s) => `<polyline fill="none" stroke="${s.colour}" stroke-width="1.5" points="${points.map((p) => `${x(p.at).toFixed(1)},${y(Number(p[s.key])).toFixed(1)}`).join(' ')}"><title>${esc(s.label)}</title></polyline>`).join('');
}

function legend(series: { label: string; colour: string }[]): string {
  return `<p class="legend">${series.map((s) => `<span><i style="background:${s.colour}"></i>${esc(s.label)}</span>`).join(' ')}</p>`;
}

function chart(title: string, body: string, legendHtml: string): string {
  return `<h2>${esc(title)}</h2><svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">${body}</svg>${legendHtml}`;
}

export function renderFleetHtml(r: FleetReport, title: string): string {
  const t = r.timeline;
  const states = [
    { key: 'present' as const, label: 'owner present', colour: '#2b7bb9' },
    { key: 'desktopOnly' as const, label: 'desktop running, owner away', colour: '#8fc1e3' },
    { key: 'batch' as const, label: 'batch running', colour: '#e08a2c' },
    { key: 'idle' as const, label: 'on, idle', colour: '#bbbbbb' },
    { key: 'asleep' as const, label: 'asleep', colour: '#5a5a7a' },
  ];
  const maxWatts = Math.max(1, ...t.map((p) => p.watts));
  const maxCores = Math.max(1, ...t.map((p) => Math.max(p.batchCoresBusy, p.queuedCores)));
  const alwaysOnWatts = r.pcs * (r.energy.powerWatts.pcIdle + r.energy.powerWatts.desktop);
  const figures: [string, string][] = [
    ['Mornings', `${r.mornings.count} (${r.mornings.instant} instant: ${pct(r.mornings.instantRatio)}; after a night suspended ${r.mornings.instantAfterSuspend} of ${r.mornings.afterSuspend}: ${pct(r.mornings.instantAfterSuspendRatio)}; ${r.mornings.missing} without their desktop)`],
    ['Morning wait (simulated s)', `p50 ${fmt(r.mornings.waitS.p50)} · p95 ${fmt(r.mornings.waitS.p95)} · p99 ${fmt(r.mornings.waitS.p99)} · max ${fmt(r.mornings.waitS.max)}`],
    ['Harvest ratio', `${pct(r.harvest.ratio)} (${r.harvest.usedPcHours} of ${r.harvest.availablePcHours} idle night PC-hours with demand; core utilisation ${pct(r.harvest.coreUtilisation)})`],
    ['Energy', `${fmt(r.energy.officeKWh, 1)} kWh for the office (+ ${fmt(r.energy.batchKWh, 1)} kWh of batch) vs ${fmt(r.energy.alwaysOnKWh, 1)} kWh always-on: ${pct(r.energy.savedRatio)} saved (${pct(r.energy.savedRatioInclBatch)} counting batch); ${r.energy.asleepPcHours} PC-hours asleep`],
    ['Power figures', `asleep ${r.energy.powerWatts.asleep} W, on and idle ${r.energy.powerWatts.pcIdle} W, + ${r.energy.powerWatts.desktop} W per running desktop, + ${r.energy.powerWatts.batchCore} W per busy batch core`],
    ['Pre-staging', `${r.preStaging.hits} hits of ${r.preStaging.stagings} stagings (precision ${pct(r.preStaging.precision)}), recall ${pct(r.preStaging.recall)} of ${r.preStaging.arrivalsAtOwnPc} arrivals at their own PC; lead p50 ${fmt(r.preStaging.leadMinutes.p50, 1)} min, p90 ${fmt(r.preStaging.leadMinutes.p90, 1)} min`],
    ['Batch', `${r.batch.completed} tasks completed (${r.batch.coreHoursCompleted} core-hours) of ${r.batch.submitted} submitted; ${r.batch.coreHoursRun} core-hours run; states ${Object.entries(r.batch.byState).map(([k, v]) => `${k} ${v}`).join(', ')}`],
    ['Control plane', `${r.controlPlane.events} events; queue wait p99 ${fmt(r.controlPlane.queueMsP99)} ms, handling p99 ${fmt(r.controlPlane.handleMsP99)} ms (real time)`],
    ['Run', `${r.window.from} → ${r.window.until}, ${r.pcs} PCs, ${r.run.speed}x, ${r.run.realSeconds} s real`],
  ];
  const latencyRows = Object.entries(r.controlPlane.byType)
    .map(([type, l]) => `<tr><td>${esc(type)}</td><td>${l.count}</td><td>${fmt(l.queueMsP50)}</td><td>${fmt(l.queueMsP99)}</td><td>${fmt(l.handleMsP50)}</td><td>${fmt(l.handleMsP99)}</td></tr>`)
    .join('');
  const perDay = r.batch.perDay.map((d) => `<tr><td>${d.date}</td><td>${d.completed}</td><td>${d.coreHours}</td></tr>`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font:14px system-ui,sans-serif;margin:24px;max-width:1000px}table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
.legend span{margin-right:14px}.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle}</style></head>
<body><h1>${esc(title)}</h1>
<table>${figures.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('')}</table>
${chart('PCs by state', axes(t, r.pcs, 'PCs') + stacked(t, states, r.pcs), legend(states))}
${chart('Power draw (W)', axes(t, maxWatts, 'W') + lines(t, [{ key: 'watts', label: 'office power', colour: '#c0392b' }], maxWatts) + `<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${scale(t, maxWatts).y(alwaysOnWatts).toFixed(1)}" y2="${scale(t, maxWatts).y(alwaysOnWatts).toFixed(1)}" stroke="#888" stroke-dasharray="4 3"/>`, legend([{ label: 'power drawn', colour: '#c0392b' }, { label: `always-on (${alwaysOnWatts} W, dashed)`, colour: '#888' }]))}
${chart('Batch cores busy and queued', axes(t, maxCores, 'cores') + lines(t, [{ key: 'batchCoresBusy', label: 'cores busy', colour: '#e08a2c' }, { key: 'queuedCores', label: 'cores queued', colour: '#7f8c8d' }], maxCores), legend([{ label: 'cores busy', colour: '#e08a2c' }, { label: 'cores queued', colour: '#7f8c8d' }]))}
<h2>Batch throughput per day</h2><table><tr><th>date</th><th>tasks completed</th><th>core-hours</th></tr>${perDay}</table>
<h2>Control-plane latencies (real ms)</h2><table><tr><th>event</th><th>count</th><th>queue p50</th><th>queue p99</th><th>handling p50</th><th>handling p99</th></tr>${latencyRows}</table>
</body></html>
`;
}

/** The report's headline figures as text (what the demo prints at the end of a multi-day run). */
export function formatFleetReport(r: FleetReport): string {
  return [
    '',
    `=== deskpool office: ${r.pcs} PCs, ${r.window.days} day(s) (${r.window.from.slice(0, 16)} → ${r.window.until.slice(0, 16)} UTC) ===`,
    `mornings: ${r.mornings.count}, instant (desktop already running at the tap) ${r.mornings.instant}: ${pct(r.mornings.instantRatio)}; of those whose desktop was suspended overnight ${r.mornings.instantAfterSuspend} of ${r.mornings.afterSuspend}: ${pct(r.mornings.instantAfterSuspendRatio)}; without their desktop that day: ${r.mornings.missing}`,
    `morning wait, simulated s: p50 ${fmt(r.mornings.waitS.p50)}, p95 ${fmt(r.mornings.waitS.p95)}, p99 ${fmt(r.mornings.waitS.p99)}, max ${fmt(r.mornings.waitS.max)}`,
    `harvest: ${pct(r.harvest.ratio)} of idle night PC-hours with batch demand used by batch (${r.harvest.usedPcHours} of ${r.harvest.availablePcHours}); core utilisation ${pct(r.harvest.coreUtilisation)}`,
    `energy: office ${fmt(r.energy.officeKWh, 1)} kWh + batch ${fmt(r.energy.batchKWh, 1)} kWh vs always-on ${fmt(r.energy.alwaysOnKWh, 1)} kWh: ${pct(r.energy.savedRatio)} saved (${pct(r.energy.savedRatioInclBatch)} counting batch); ${r.energy.asleepPcHours} PC-hours asleep`,
    `pre-staging: ${r.preStaging.hits} hits of ${r.preStaging.stagings} stagings (precision ${pct(r.preStaging.precision)}), recall ${pct(r.preStaging.recall)}; lead p50 ${fmt(r.preStaging.leadMinutes.p50, 1)} min`,
    `batch: ${r.batch.completed} tasks completed (${r.batch.coreHoursCompleted} core-hours) of ${r.batch.submitted} submitted; ${r.batch.coreHoursRun} core-hours run`,
    `control plane: ${r.controlPlane.events} events, queue wait p99 ${fmt(r.controlPlane.queueMsP99)} ms, handling p99 ${fmt(r.controlPlane.handleMsP99)} ms (real); run took ${r.run.realSeconds} s at ${r.run.speed}x`,
  ].join('\n');
}
