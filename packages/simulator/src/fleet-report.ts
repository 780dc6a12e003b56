// What a multi-day run measured, computed from what the simulated hypervisors recorded (which
// domain ran on which PC when, which PC slept when), the presence days and sampled queue depth.
// Pure: the same record gives the same report.
import { percentile } from './metrics.js';
import type { RunInterval } from './office-hypervisor.js';
import type { PresenceDay } from './presence.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

/** Per-state power of one office PC (documented in docs/simulator.md). */
export const FLEET_POWER_WATTS = {
  /** Suspended to RAM (S3), Wake-on-LAN armed. */
  asleep: 2,
  /** On, nothing running. */
  pcIdle: 30,
  /** Extra for a running desktop VM. */
  desktop: 15,
  /** Extra per busy batch core. */
  batchCore: 10,
} as const;

export interface SleepInterval {
  pc: number;
  from: number;
  until: number | null;
}

/** Queued batch work at a moment (tasks waiting to be placed, checkpointed ones included). */
export interface DemandSample {
  at: number;
  queuedTasks: number;
  queuedCores: number;
}

export interface EventLatency {
  type: string;
  /** Real ms from enqueue to the worker taking it. */
  queueMs: number;
  /** Real ms the worker spent on it (lock, snapshot, plan, commit, dispatch). */
  handleMs: number;
}

export interface FleetRecord {
  startMs: number;
  endMs: number;
  pcs: number;
  pcCores: number;
  /** Night window, local (UTC) minutes after midnight. */
  night: { startMinute: number; endMinute: number };
  presence: readonly PresenceDay[];
  /** Desktop domain of person i. */
  desktopOf(person: number): string;
  /** Sign-in time at another PC, for hot-desking days (key: `${person}/${date}`). */
  signIns: ReadonlyMap<string, number>;
  intervals: readonly RunInterval[];
  sleeps: readonly SleepInterval[];
  demand: readonly DemandSample[];
  /** Cores of each batch domain. */
  taskCores(domain: string): number;
  /** When each finished task's guest completed. */
  completions: readonly { at: number; cores: number; workMs: number }[];
  tasks: { submitted: number; byState: Record<string, number> };
  latencies: readonly EventLatency[];
  /** Real seconds the run took, and its speed. */
  realSeconds: number;
  speed: number;
}

export interface Morning {
  person: number;
  date: string;
  pc: number;
  hotDesk: boolean;
  /** Simulated seconds from the tap (or sign-in elsewhere) to the desktop running there; null: never that day. */
  waitS: number | null;
  /** The desktop was already running at the tap. */
  instant: boolean;
  /** The desktop had been suspended (not running anywhere) during the night before. */
  suspendedOvernight: boolean;
}

export interface TimelinePoint {
  at: number;
  present: number;
  desktopOnly: number;
  batch: number;
  idle: number;
  asleep: number;
  watts: number;
  batchCoresBusy: number;
  queuedCores: number;
}

export interface FleetReport {
  window: { from: string; until: string; days: number };
  pcs: number;
  run: { realSeconds: number; speed: number };
  mornings: { count: number; instant: number; instantRatio: number | null; afterSuspend: number; instantAfterSuspend: number; instantAfterSuspendRatio: number | null; waitS: { p50: number | null; p95: number | null; p99: number | null; max: number | null }; missing: number };
  harvest: { usedPcHours: number; availablePcHours: number; ratio: number | null; nightPcHoursIdle: number; coreUtilisation: number | null };
  energy: { actualKWh: number; batchKWh: number; officeKWh: number; alwaysOnKWh: number; savedRatio: number | null; savedRatioInclBatch: number | null; asleepPcHours: number; powerWatts: typeof FLEET_POWER_WATTS };
  preStaging: { stagings: number; hits: number; precision: number | null; recall: number | null; arrivalsAtOwnPc: number; leadMinutes: { p50: number | null; p90: number | null } };
  batch: { submitted: number; byState: Record<string, number>; completed: number; coreHoursCompleted: number; coreHoursRun: number; perDay: { date: string; completed: number; coreHours: number }[] };
  controlPlane: { events: number; byType: Record<string, { count: number; queueMsP50: number | null; queueMsP99: number | null; handleMsP50: number | null; handleMsP99: number | null }>; handleMsP99: number | null; queueMsP99: number | null };
  timeline: TimelinePoint[];
  morningsList: Morning[];
}

const ratio = (a: number, b: number): number | null => (b > 0 ? a / b : null);
const round = (x: number | null, digits = 3): number | null => (x === null ? null : Math.round(x * 10 ** digits) / 10 ** digits);
const iso = (ms: number): string => new Date(ms).toISOString();
const isoDate = (ms: number): string => iso(ms).slice(0, 10);

/** Per PC, what runs on it over time: a sorted list of segments with constant state. */
interface Segment {
  from: number;
  until: number;
  desktops: number;
  batchCores: number;
  asleep: boolean;
}

function segmentsOf(pc: number, intervals: readonly RunInterval[], sleeps: readonly SleepInterval[], taskCores: (d: string) => number, from: number, until: number): Segment[] {
  const deltas: { t: number; desktops: number; cores: number; sleep: number }[] = [];
  for (const i of intervals) {
    if (i.pc !== pc) continue;
    const a = Math.max(from, i.from);
    const b = Math.min(until, i.until ?? until);
    if (b <= a) continue;
    const isTask = i.domain.startsWith('dp-task-');
    const cores = isTask ? taskCores(i.domain) : 0;
    deltas.push({ t: a, desktops: isTask ? 0 : 1, cores, sleep: 0 }, { t: b, desktops: isTask ? 0 : -1, cores: -cores, sleep: 0 });
  }
  for (const s of sleeps) {
    if (s.pc !== pc) continue;
    const a = Math.max(from, s.from);
    const b = Math.min(until, s.until ?? until);
    if (b <= a) continue;
    deltas.push({ t: a, desktops: 0, cores: 0, sleep: 1 }, { t: b, desktops: 0, cores: 0, sleep: -1 });
  }
  deltas.sort((x, y) => x.t - y.t);
  const out: Segment[] = [];
  let t = from;
  let desktops = 0;
  let cores = 0;
  let sleep = 0;
  for (const d of deltas) {
    if (d.t > t) out.push({ from: t, until: d.t, desktops, batchCores: cores, asleep: sleep > 0 });
    t = Math.max(t, d.t);
    desktops += d.desktops;
    cores += d.cores;
    sleep += d.sleep;
  }
  if (until > t) out.push({ from: t, until, desktops, batchCores: cores, asleep: sleep > 0 });
  return out;
}

function segmentAt(segments: readonly Segment[], t: number): Segment | undefined {
  let lo = 0;
  let hi = segments.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const s = segments[mid];
    if (!s) break;
    if (t < s.from) hi = mid - 1;
    else if (t >= s.until) lo = mid + 1;
    else return s;
  }
  return undefined;
}

function powerOf(s: Segment): number {
  if (s.asleep && s.desktops === 0 && s.batchCores === 0) return FLEET_POWER_WATTS.asleep;
  return FLEET_POWER_WATTS.pcIdle + FLEET_POWER_WATTS.desktop * s.desktops + FLEET_POWER_WATTS.batchCore * s.batchCores;
}

/** Whether `t` falls in the night window (local = UTC). */
function inNight(t: number, night: FleetRecord['night']): boolean {
  const minute = Math.floor((t % DAY) / MIN);
  return night.startMinute > night.endMinute ? minute >= night.startMinute || minute < night.endMinute : minute >= night.startMinute && minute < night.endMinute;
}

function demandAt(samples: readonly DemandSample[], t: number): DemandSample | undefined {
  let lo = 0;
  let hi = samples.length - 1;
  let best: DemandSample | undefined;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const s = samples[mid];
    if (!s) break;
    if (s.at <= t) {
      best = s;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return best;
}

export function computeFleetReport(r: FleetRecord, stepMs = 5 * MIN): FleetReport {
  const segments = [...Array(r.pcs).keys()].map((pc) => segmentsOf(pc, r.intervals, r.sleeps, r.taskCores, r.startMs, r.endMs));
  // Who sits at each PC when.
  const presentAt: { from: number; until: number }[][] = [...Array(r.pcs)].map(() => []);
  for (const d of r.presence) presentAt[d.pc]?.push({ from: d.arrivesAt, until: d.leavesAt });
  const isPresent = (pc: number, t: number): boolean => (presentAt[pc] ?? []).some((w) => w.from <= t && t < w.until);

  // --- energy, exact over the segments -----------------------------------------------------
  let actualWh = 0;
  let batchWh = 0;
  let asleepMs = 0;
  for (const segs of segments) {
    for (const s of segs) {
      const h = (s.until - s.from) / HOUR;
      const w = powerOf(s);
      actualWh += w * h;
      if (s.asleep && s.desktops === 0 && s.batchCores === 0) asleepMs += s.until - s.from;
      // Batch is charged its cores, and the whole PC while no desktop runs on it.
      if (s.batchCores > 0) batchWh += (s.desktops === 0 ? w : FLEET_POWER_WATTS.batchCore * s.batchCores) * h;
    }
  }
  const hours = (r.endMs - r.startMs) / HOUR;
  const alwaysOnWh = (FLEET_POWER_WATTS.pcIdle + FLEET_POWER_WATTS.desktop) * r.pcs * hours;
  const officeWh = actualWh - batchWh;

  // --- timeline and harvest, sampled ---------------------------------------------------------
  const timeline: TimelinePoint[] = [];
  let usedSamples = 0;
  let availableSamples = 0;
  let idleNightSamples = 0;
  let busyCoreSamples = 0;
  let idleCoreSamples = 0;
  const chartEvery = Math.max(stepMs, Math.ceil((r.endMs - r.startMs) / 600 / stepMs) * stepMs);
  for (let t = r.startMs; t < r.endMs; t += stepMs) {
    let present = 0;
    let desktopOnly = 0;
    let batch = 0;
    let idle = 0;
    let asleep = 0;
    let watts = 0;
    let cores = 0;
    let idleNight = 0;
    let idleNightWithBatch = 0;
    let idleNightCoresBusy = 0;
    const night = inNight(t, r.night);
    for (let pc = 0; pc < r.pcs; pc += 1) {
      const s = segmentAt(segments[pc] ?? [], t);
      const here = isPresent(pc, t);
      const desktops = s?.desktops ?? 0;
      const batchCores = s?.batchCores ?? 0;
      watts += s ? powerOf(s) : FLEET_POWER_WATTS.pcIdle;
      cores += batchCores;
      if (here) present += 1;
      else if (batchCores > 0) batch += 1;
      else if (desktops > 0) desktopOnly += 1;
      else if (s?.asleep) asleep += 1;
      else idle += 1;
      if (night && !here) {
        idleNight += 1;
        if (batchCores > 0) idleNightWithBatch += 1;
        idleNightCoresBusy += batchCores;
      }
    }
    const demand = demandAt(r.demand, t);
    const queuedCores = demand?.queuedCores ?? 0;
    if (night) {
      idleNightSamples += idleNight;
      // With demand present: only as many idle PCs as the running and queued work could fill.
      const couldFill = idleNightWithBatch + Math.ceil(queuedCores / r.pcCores);
      const available = Math.min(idleNight, couldFill);
      availableSamples += available;
      usedSamples += Math.min(idleNightWithBatch, available);
      busyCoreSamples += idleNightCoresBusy;
      idleCoreSamples += Math.min(idleNight * r.pcCores, idleNightCoresBusy + queuedCores);
    }
    if ((t - r.startMs) % chartEvery === 0) timeline.push({ at: t, present, desktopOnly, batch, idle, asleep, watts, batchCoresBusy: cores, queuedCores });
  }
  const sampleHours = stepMs / HOUR;

  // --- mornings ------------------------------------------------------------------------------
  const byDomain = new Map<string, RunInterval[]>();
  for (const i of r.intervals) {
    const list = byDomain.get(i.domain);
    if (list) list.push(i);
    else byDomain.set(i.domain, [i]);
  }
  const mornings: Morning[] = [];
  for (const d of r.presence) {
    const domain = r.desktopOf(d.person);
    const hotDesk = d.pc !== d.person;
    const askedAt = hotDesk ? (r.signIns.get(`${d.person}/${d.date}`) ?? d.arrivesAt) : d.arrivesAt;
    const there = (byDomain.get(domain) ?? []).filter((i) => i.pc === d.pc);
    const running = there.some((i) => i.from <= askedAt && (i.until ?? Infinity) > askedAt);
    const next = there.filter((i) => i.from > askedAt && i.from < d.leavesAt).sort((a, b) => a.from - b.from)[0];
    const waitS = running ? 0 : next ? (next.from - askedAt) / 1000 : null;
    // Not running anywhere at 03:00 that morning: the night suspended it (or it never ran).
    const threeAm = askedAt - (askedAt % DAY) + 3 * HOUR;
    const suspendedOvernight = threeAm > r.startMs && !(byDomain.get(domain) ?? []).some((i) => i.from <= threeAm && (i.until ?? Infinity) > threeAm);
    mornings.push({ person: d.person, date: d.date, pc: d.pc, hotDesk, waitS, instant: running, suspendedOvernight });
  }
  const waits = mornings.flatMap((m) => (m.waitS === null ? [] : [m.waitS]));

  // --- pre-staging: desktops brought back at their own PC before the person came in -----------
  let stagings = 0;
  let hits = 0;
  const leads: number[] = [];
  const arrivalsByKey = new Map(r.presence.map((d) => [`${d.person}/${d.date}`, d]));
  const people = new Set(r.presence.map((d) => d.person));
  let arrivalsAtOwnPc = 0;
  for (const d of r.presence) if (d.pc === d.person) arrivalsAtOwnPc += 1;
  for (const person of people) {
    const domain = r.desktopOf(person);
    for (const i of byDomain.get(domain) ?? []) {
      if (i.pc !== person) continue;
      const hour = (i.from % DAY) / HOUR;
      // Started in the small hours or morning while nobody sat at the PC: pre-staging.
      if (hour < 4 || hour >= 11 || isPresent(person, i.from)) continue;
      const day = arrivalsByKey.get(`${person}/${isoDate(i.from)}`);
      if (day && day.arrivesAt < i.from) continue;
      stagings += 1;
      if (day && day.pc === person && (i.until ?? Infinity) > day.arrivesAt) {
        hits += 1;
        leads.push((day.arrivesAt - i.from) / MIN);
      }
    }
  }

  // --- batch ---------------------------------------------------------------------------------
  const perDay = new Map<string, { completed: number; coreHours: number }>();
  for (let t = r.startMs - (r.startMs % DAY); t < r.endMs; t += DAY) perDay.set(isoDate(t), { completed: 0, coreHours: 0 });
  for (const c of r.completions) {
    const e = perDay.get(isoDate(c.at));
    if (!e) continue;
    e.completed += 1;
    e.coreHours += (c.cores * c.workMs) / HOUR;
  }
  let coreHoursRun = 0;
  for (const i of r.intervals) if (i.domain.startsWith('dp-task-')) coreHoursRun += (r.taskCores(i.domain) * (Math.min(i.until ?? r.endMs, r.endMs) - i.from)) / HOUR;

  // --- control plane -------------------------------------------------------------------------
  const byType: FleetReport['controlPlane']['byType'] = {};
  const groups = new Map<string, EventLatency[]>();
  for (const l of r.latencies) {
    const list = groups.get(l.type);
    if (list) list.push(l);
    else groups.set(l.type, [l]);
  }
  for (const [type, ls] of [...groups].sort((a, b) => b[1].length - a[1].length)) {
    const q = ls.map((l) => l.queueMs);
    const h = ls.map((l) => l.handleMs);
    byType[type] = { count: ls.length, queueMsP50: percentile(q, 50), queueMsP99: percentile(q, 99), handleMsP50: percentile(h, 50), handleMsP99: percentile(h, 99) };
  }

  return {
    window: { from: iso(r.startMs), until: iso(r.endMs), days: Math.round((r.endMs - r.startMs) / DAY) },
    pcs: r.pcs,
    run: { realSeconds: Math.round(r.realSeconds), speed: r.speed },
    mornings: {
      count: mornings.length,
      instant: mornings.filter((m) => m.instant).length,
      instantRatio: round(ratio(mornings.filter((m) => m.instant).length, mornings.length)),
      afterSuspend: mornings.filter((m) => m.suspendedOvernight).length,
      instantAfterSuspend: mornings.filter((m) => m.suspendedOvernight && m.instant).length,
      instantAfterSuspendRatio: round(ratio(mornings.filter((m) => m.suspendedOvernight && m.instant).length, mornings.filter((m) => m.suspendedOvernight).length)),
      waitS: { p50: percentile(waits, 50), p95: percentile(waits, 95), p99: percentile(waits, 99), max: percentile(waits, 100) },
      missing: mornings.filter((m) => m.waitS === null).length,
    },
    harvest: {
      usedPcHours: Math.round(usedSamples * sampleHours),
      availablePcHours: Math.round(availableSamples * sampleHours),
      ratio: round(ratio(usedSamples, availableSamples)),
      nightPcHoursIdle: Math.round(idleNightSamples * sampleHours),
      coreUtilisation: round(ratio(busyCoreSamples, idleCoreSamples)),
    },
    energy: {
      actualKWh: Math.round(actualWh) / 1000,
      batchKWh: Math.round(batchWh) / 1000,
      officeKWh: Math.round(officeWh) / 1000,
      alwaysOnKWh: Math.round(alwaysOnWh) / 1000,
      savedRatio: round(ratio(alwaysOnWh - officeWh, alwaysOnWh)),
      savedRatioInclBatch: round(ratio(alwaysOnWh - actualWh, alwaysOnWh)),
      asleepPcHours: Math.round(asleepMs / HOUR),
      powerWatts: FLEET_POWER_WATTS,
    },
    preStaging: {
      stagings,
      hits,
      precision: round(ratio(hits, stagings)),
      recall: round(ratio(hits, arrivalsAtOwnPc)),
      arrivalsAtOwnPc,
      leadMinutes: { p50: round(percentile(leads, 50), 1), p90: round(percentile(leads, 90), 1) },
    },
    batch: {
      submitted: r.tasks.submitted,
      byState: r.tasks.byState,
      completed: r.completions.length,
      coreHoursCompleted: Math.round(r.completions.reduce((s, c) => s + (c.cores * c.workMs) / HOUR, 0)),
      coreHoursRun: Math.round(coreHoursRun),
      perDay: [...perDay].map(([date, v]) => ({ date, completed: v.completed, coreHours: Math.round(v.coreHours) })),
    },
    controlPlane: {
      events: r.latencies.length,
      byType,
      handleMsP99: percentile(r.latencies.map((l) => l.handleMs), 99),
      queueMsP99: percentile(r.latencies.map((l) => l.queueMs), 99),
    },
    timeline,
    morningsList: mornings,
  };
}
