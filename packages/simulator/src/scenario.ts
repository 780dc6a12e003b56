// Who does what during the simulated evening, night and morning. Pure and seeded: the same
// seed gives the same office.
import { mulberry32 } from '@deskpool/scheduler';

const MIN = 60_000;
const HOUR = 60 * MIN;

/** Wednesday 7 January 2026, 15:30 UTC: the demo's first simulated moment (pool time zone UTC). */
export const DEMO_START_MS = Date.UTC(2026, 0, 7, 15, 30);
const DAY = 24 * HOUR;
const at = (dayOffset: number, h: number, m = 0): number => Date.UTC(2026, 0, 7 + dayOffset, h, m);

export interface Person {
  index: number;
  name: string;
  /** Their own PC (index into the PCs). */
  homePc: number;
  leavesAt: number;
  /** Asks "keep my desktop running tonight". */
  pins: boolean;
  /** Absent tomorrow (holiday): no morning activity. */
  absent: boolean;
  /** Tomorrow's first tap, or null when absent. */
  arrivesAt: number | null;
  /** The PC they sit at tomorrow (another one when hot-desking). */
  morningPc: number | null;
  /** First taps of the four previous Thursdays (pre-staging learns from them). */
  history: number[];
}

export interface Scenario {
  startMs: number;
  endMs: number;
  people: Person[];
  /** Activity times per PC, as offsets from the start. */
  traces: number[][];
  /** Sign-ins at a PC other than one's own: who, where, when. */
  signIns: { person: number; pc: number; at: number }[];
}

/** The scenario's seeded PRNG (the scheduler's mulberry32), so a seed replays the same office. */
export const prng = mulberry32;

const ACTIVITY_EVERY_MS = 2 * MIN;

function activity(from: number, until: number, startMs: number): number[] {
  const out: number[] = [];
  for (let t = from; t < until; t += ACTIVITY_EVERY_MS) out.push(t - startMs);
  return out;
}

/**
 * An office of `pcs` people, one PC each. They leave between 17:00 and 19:00, about one in ten
 * pins its desktop, a few are away tomorrow, and tomorrow's arrivals spread over 07:30–08:30;
 * a few sit down at the PC of someone who is away (hot-desking). Ends at 09:45.
 */
export function buildScenario(pcs: number, seed: number): Scenario {
  const rand = prng(seed);
  const startMs = DEMO_START_MS;
  const endMs = at(1, 9, 45);
  const absentCount = Math.max(1, Math.round(pcs * 0.06));
  const order = [...Array(pcs).keys()].sort(() => rand() - 0.5);
  const absent = new Set(order.slice(0, absentCount));
  const hotDeskers = order.slice(absentCount, absentCount * 2);
  const hotDeskPc = new Map(hotDeskers.map((p, i) => [p, order[i] ?? p]));

  const people: Person[] = [...Array(pcs).keys()].map((i) => {
    const leavesAt = at(0, 17) + Math.floor(rand() * 2 * HOUR);
    const pins = rand() < 0.1;
    const usual = at(1, 7, 30) + Math.floor(rand() * HOUR);
    const isAbsent = absent.has(i);
    const hotDesks = hotDeskPc.has(i);
    // Habits hold within a few minutes. Those who sit elsewhere come in early, before their
    // desktop would be pre-staged at their own PC (see the README: moving a running desktop
    // live is not carried out by the runtime yet).
    const arrivesAt = isAbsent ? null : hotDesks ? at(1, 6, 45) + Math.floor(rand() * 15 * MIN) : usual + Math.floor((rand() - 0.5) * 10 * MIN);
    const history = [1, 2, 3, 4].map((w) => usual - w * 7 * DAY + Math.floor((rand() - 0.5) * 10 * MIN));
    return {
      index: i,
      name: `person${String(i + 1).padStart(3, '0')}`,
      homePc: i,
      leavesAt,
      pins,
      absent: isAbsent,
      arrivesAt,
      morningPc: isAbsent ? null : (hotDeskPc.get(i) ?? i),
      history,
    };
  });

  const traces: number[][] = [...Array(pcs)].map(() => []);
  const signIns: Scenario['signIns'] = [];
  for (const p of people) {
    traces[p.homePc]?.push(...activity(startMs, p.leavesAt, startMs));
    if (p.arrivesAt === null || p.morningPc === null) continue;
    traces[p.morningPc]?.push(...activity(p.arrivesAt, endMs, startMs));
    // The display manager's hook reports who signed in a little after the first tap.
    if (p.morningPc !== p.homePc) signIns.push({ person: p.index, pc: p.morningPc, at: p.arrivesAt + 20_000 });
  }
  for (const t of traces) t.sort((a, b) => a - b);
  return { startMs, endMs, people, traces, signIns };
}
