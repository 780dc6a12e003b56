// Pure arithmetic over what the demo recorded: waits, energy, invariant checks.
import type { RunInterval } from './office-hypervisor.js';
import type { Person } from './scenario.js';

/** Per-state power of one PC, stated in the summary. */
export const POWER_WATTS = {
  /** PC on, nothing running. */
  pcIdle: 30,
  /** Extra for a running desktop VM (keeps the CPU out of deep idle states). */
  desktop: 15,
  /** Extra per busy batch core. */
  batchCore: 10,
} as const;

export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? null;
}

export interface MorningOutcome {
  person: string;
  pc: number;
  hotDesk: boolean;
  /** Tap (or sign-in at another PC) to desktop running there; null if it never ran there. */
  waitMs: number | null;
  /** The desktop was already running there when the person arrived, after being suspended overnight. */
  preStaged: boolean;
}

const overlaps = (i: RunInterval, from: number, until: number): boolean => i.from < until && (i.until ?? Infinity) > from;

/** How each arriving person's morning went, from the record of runs. */
export function mornings(people: readonly Person[], desktopOf: (p: Person) => string, intervals: readonly RunInterval[], signInAt: (p: Person) => number | null): MorningOutcome[] {
  const out: MorningOutcome[] = [];
  for (const p of people) {
    if (p.arrivesAt === null || p.morningPc === null) continue;
    const domain = desktopOf(p);
    const hotDesk = p.morningPc !== p.homePc;
    const askedAt = hotDesk ? (signInAt(p) ?? p.arrivesAt) : p.arrivesAt;
    const there = intervals.filter((i) => i.domain === domain && i.pc === p.morningPc);
    const runningAtAsk = there.find((i) => i.from <= askedAt && (i.until ?? Infinity) > askedAt);
    const later = there.filter((i) => i.from > askedAt).sort((a, b) => a.from - b.from)[0];
    const waitMs = runningAtAsk ? 0 : later ? later.from - askedAt : null;
    // Suspended overnight (some run ended after they left) and back before they came in.
    const suspendedOvernight = intervals.some((i) => i.domain === domain && i.until !== null && i.until > p.leavesAt && i.until < askedAt);
    out.push({ person: p.name, pc: p.morningPc, hotDesk, waitMs, preStaged: Boolean(runningAtAsk) && suspendedOvernight && !hotDesk });
  }
  return out;
}

/** Domains that ran on two PCs at the same moment (must be empty). */
export function doubleRuns(intervals: readonly RunInterval[]): { domain: string; pcs: [number, number]; at: number }[] {
  const byDomain = new Map<string, RunInterval[]>();
  for (const i of intervals) byDomain.set(i.domain, [...(byDomain.get(i.domain) ?? []), i]);
  const found: { domain: string; pcs: [number, number]; at: number }[] = [];
  for (const [domain, list] of byDomain) {
    for (let a = 0; a < list.length; a += 1) {
      for (let b = a + 1; b < list.length; b += 1) {
        const x = list[a];
        const y = list[b];
        if (!x || !y || x.pc === y.pc) continue;
        if (overlaps(x, y.from, y.until ?? Infinity)) found.push({ domain, pcs: [x.pc, y.pc], at: Math.max(x.from, y.from) });
      }
    }
  }
  return found;
}

/** Milliseconds a domain ran in [from, until). */
export function runTime(intervals: readonly RunInterval[], from: number, until: number): number {
  let total = 0;
  for (const i of intervals) total += Math.max(0, Math.min(i.until ?? until, until) - Math.max(i.from, from));
  return total;
}

export interface Energy {
  actualKWh: number;
  /** Every PC on with its desktop running the whole time, no batch. */
  alwaysOnKWh: number;
  /** Of the actual figure: what batch work drew. */
  batchKWh: number;
}

/** Energy over [from, until) from the run record; batch VMs count `batchCores` busy cores each. */
export function energy(pcs: number, intervals: readonly RunInterval[], from: number, until: number, batchCores: number): Energy {
  const hours = (until - from) / 3_600_000;
  const kWh = (watts: number, ms: number): number => (watts * ms) / 3_600_000 / 1000;
  let desktopMs = 0;
  let batchMs = 0;
  for (const i of intervals) {
    const ms = Math.max(0, Math.min(i.until ?? until, until) - Math.max(i.from, from));
    if (i.domain.startsWith('dp-task-')) batchMs += ms;
    else desktopMs += ms;
  }
  const idle = (POWER_WATTS.pcIdle * pcs * hours) / 1000;
  const batchKWh = kWh(POWER_WATTS.batchCore * batchCores, batchMs);
  return {
    actualKWh: idle + kWh(POWER_WATTS.desktop, desktopMs) + batchKWh,
    alwaysOnKWh: ((POWER_WATTS.pcIdle + POWER_WATTS.desktop) * pcs * hours) / 1000,
    batchKWh,
  };
}
