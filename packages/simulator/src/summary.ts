// The end-of-night report: figures and invariant checks, then as text.
import { POWER_WATTS, doubleRuns, energy, mornings, percentile, type Energy, type MorningOutcome } from './metrics.js';
import type { RunInterval } from './office-hypervisor.js';
import type { Person, Scenario } from './scenario.js';

export interface InvariantCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface DemoSummary {
  pcs: number;
  desktopsSuspendedOvernight: number;
  batch: { submitted: number; done: number; cpuHours: number; byState: Record<string, number>; reruns: number };
  eventsHandled: Record<string, number>;
  energy: Energy;
  mornings: MorningOutcome[];
  waitsSeconds: { p50: number | null; p95: number | null; max: number | null };
  preStaging: { hits: number; arrivals: number };
  invariants: InvariantCheck[];
  ok: boolean;
}

export interface SummaryInput {
  scenario: Scenario;
  intervals: readonly RunInterval[];
  desktopOf(p: Person): string;
  signInAt(p: Person): number | null;
  taskStates: readonly string[];
  tasksSubmitted: number;
  /** Distinct tasks whose guest reported completion. */
  tasksReportedDone: number;
  /** Completion reports in all (more than tasks when a finished task was placed again). */
  completionReports: number;
  eventsHandled: Record<string, number>;
  batchCores: number;
  pcs: number;
  /** Checks only the hardware can make (real guests: their counters). */
  extraInvariants?: readonly InvariantCheck[];
}

const LOST_TASK_STATES = new Set(['failed', 'cancelled', 'deadline_missed']);

export function summarize(input: SummaryInput): DemoSummary {
  const { scenario, intervals } = input;
  const desktops = new Set(scenario.people.map((p) => input.desktopOf(p)));
  const nightStart = Date.UTC(2026, 0, 7, 19, 0);
  const nightEnd = Date.UTC(2026, 0, 8, 7, 0);
  const suspended = new Set(intervals.filter((i) => desktops.has(i.domain) && i.until !== null && i.until < nightEnd).map((i) => i.domain));
  const batchMs = intervals.filter((i) => i.domain.startsWith('dp-task-')).reduce((s, i) => s + (i.until ?? scenario.endMs) - i.from, 0);
  const outcomes = mornings(scenario.people, input.desktopOf, intervals, input.signInAt);
  const waits = outcomes.flatMap((o) => (o.waitMs === null ? [] : [o.waitMs / 1000]));
  const byState: Record<string, number> = {};
  for (const s of input.taskStates) byState[s] = (byState[s] ?? 0) + 1;
  const done = byState.succeeded ?? 0;
  const doubles = doubleRuns(intervals);
  const desktopDoubles = doubles.filter((d) => desktops.has(d.domain));
  const taskDoubles = doubles.filter((d) => d.domain.startsWith('dp-task-'));
  const missing = outcomes.filter((o) => o.waitMs === null);
  const lost = input.taskStates.filter((s) => LOST_TASK_STATES.has(s)).length;

  const invariants: InvariantCheck[] = [
    {
      name: 'every person got their desktop',
      ok: missing.length === 0 && outcomes.length > 0,
      detail: missing.length === 0 ? `${outcomes.length} of ${outcomes.length} arrivals (${outcomes.filter((o) => o.hotDesk).length} at another PC)` : `no desktop for ${missing.map((m) => `${m.person} at pc ${m.pc + 1}`).join(', ')}`,
    },
    {
      name: 'no desktop on two hosts',
      ok: desktopDoubles.length === 0,
      detail: desktopDoubles.length === 0 ? `${desktops.size} desktops, each ran on one PC at a time` : desktopDoubles.map((d) => `${d.domain} on pcs ${d.pcs[0] + 1} and ${d.pcs[1] + 1} at ${new Date(d.at).toISOString()}`).join('; '),
    },
    {
      name: 'no batch task lost or run twice',
      ok: taskDoubles.length === 0 && lost === 0 && input.taskStates.length === input.tasksSubmitted && done >= input.tasksReportedDone - (input.completionReports - input.tasksReportedDone),
      detail: `${input.taskStates.length} of ${input.tasksSubmitted} tasks recorded, ${lost} failed/cancelled, ${taskDoubles.length} ran on two PCs at once, ${done} succeeded of ${input.tasksReportedDone} whose guest reported completion`,
    },
    ...(input.extraInvariants ?? []),
  ];
  const hits = outcomes.filter((o) => o.preStaged).length;
  return {
    pcs: input.pcs,
    desktopsSuspendedOvernight: suspended.size,
    batch: { submitted: input.tasksSubmitted, done, cpuHours: (batchMs * input.batchCores) / 3_600_000, byState, reruns: input.completionReports - input.tasksReportedDone },
    eventsHandled: input.eventsHandled,
    energy: energy(input.pcs, intervals, nightStart, nightEnd, input.batchCores),
    mornings: outcomes,
    waitsSeconds: { p50: percentile(waits, 50), p95: percentile(waits, 95), max: percentile(waits, 100) },
    preStaging: { hits, arrivals: outcomes.filter((o) => !o.hotDesk).length },
    invariants,
    ok: invariants.every((i) => i.ok),
  };
}

const fmt = (n: number | null, digits = 0): string => (n === null ? 'n/a' : n.toFixed(digits));

export function formatSummary(s: DemoSummary, speed: number): string {
  const e = s.energy;
  const savedPct = e.alwaysOnKWh > 0 ? (100 * (e.alwaysOnKWh - (e.actualKWh - e.batchKWh))) / e.alwaysOnKWh : 0;
  const real = (simSeconds: number | null): number | null => (simSeconds === null ? null : simSeconds / speed);
  const lines = [
    '',
    `=== deskpool demo office: ${s.pcs} PCs, one night (Wed 15:30 → Thu 09:45 UTC) ===`,
    `desktops suspended overnight: ${s.desktopsSuspendedOvernight} of ${s.pcs}`,
    `batch: ${s.batch.done} of ${s.batch.submitted} tasks done, ${s.batch.cpuHours.toFixed(1)} CPU-hours run (states: ${Object.entries(s.batch.byState).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'})`,
    ...(s.batch.reruns > 0 ? [`  ${s.batch.reruns} finished task(s) ran again: their completion arrived while a checkpoint was in flight, the failed checkpoint requeued them`] : []),
    `events planned by the scheduler: ${Object.entries(s.eventsHandled).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    `energy 19:00–07:00: ${e.actualKWh.toFixed(1)} kWh (of which batch ${e.batchKWh.toFixed(1)}) vs always-on ${e.alwaysOnKWh.toFixed(1)} kWh: desktops and idle PCs used ${savedPct.toFixed(0)}% less`,
    `  power figures: PC on and idle ${POWER_WATTS.pcIdle} W, + ${POWER_WATTS.desktop} W per running desktop, + ${POWER_WATTS.batchCore} W per busy batch core; always-on = every PC on with its desktop running`,
    `morning wait, tap (or sign-in at another PC) → desktop running there, simulated seconds: p50 ${fmt(s.waitsSeconds.p50)}, p95 ${fmt(s.waitsSeconds.p95)}, max ${fmt(s.waitsSeconds.max)}`,
    `  (at ${speed}x, every real millisecond the control plane or a hypervisor spends is ${(speed / 1000).toFixed(1)} simulated seconds; in real seconds: p50 ${fmt(real(s.waitsSeconds.p50), 1)}, p95 ${fmt(real(s.waitsSeconds.p95), 1)}, max ${fmt(real(s.waitsSeconds.max), 1)})`,
    `pre-staging hits: ${s.preStaging.hits} of ${s.preStaging.arrivals} arrivals at their own PC found their desktop already running`,
    'invariants:',
    ...s.invariants.map((i) => `  [${i.ok ? 'ok' : 'FAILED'}] ${i.name}: ${i.detail}`),
    s.ok ? 'all invariants hold' : 'SOME INVARIANTS FAILED',
  ];
  return lines.join('\n');
}
