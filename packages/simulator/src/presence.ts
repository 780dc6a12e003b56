// Who is at which PC when, over several days: generated from per-person habits (seeded), or
// read from a CSV of real office presence so a recorded week can be replayed.
import { z } from 'zod';
import { mulberry32 } from '@deskpool/scheduler';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

/** One person's day at the office. Times are epoch ms (the pool's time zone is UTC). */
export interface PresenceDay {
  person: number;
  /** Local date, YYYY-MM-DD. */
  date: string;
  /** First tap. */
  arrivesAt: number;
  /** Last activity. */
  leavesAt: number;
  /** Away from the desk for lunch, if they took one. */
  lunch: { from: number; until: number } | null;
  /** The PC they sit at (index); their own unless hot-desking. */
  pc: number;
}

/** A person's habits: minutes after local midnight, with a spread. */
export interface Habits {
  arriveMinute: number;
  departMinute: number;
  /** Standard deviation of arrival and departure, minutes. */
  spreadMinutes: number;
  lunchMinute: number;
  lunchMinutes: number;
  /** Probability of taking a lunch break away from the desk. */
  lunchProbability: number;
  /** Probability of coming in, Monday..Sunday. */
  attendance: readonly [number, number, number, number, number, number, number];
}

export interface PresenceOptions {
  people: number;
  /** Local midnight (UTC) of the first day. */
  firstDayMs: number;
  days: number;
  /** Seeds the day-to-day variation. */
  seed: number;
  /** Seeds the people's habits (default: `seed`); the same habits over different days share it. */
  habitsSeed?: number;
}

/** Standard normal from two uniforms (Box–Muller). */
function gaussian(rand: () => number): number {
  const u = Math.max(rand(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

/**
 * Habits drawn for person `index`: arrivals centred between 07:15 and 09:15, a 7.5–9.5 h day,
 * lunch around 12:00–13:00 for 30–60 minutes, in most days, weekends almost never. Fridays are
 * lighter (working from home).
 */
export function habitsOf(index: number, seed: number): Habits {
  const rand = mulberry32((seed * 7919 + index * 104_729) >>> 0);
  const arriveMinute = 7 * 60 + 15 + Math.floor(rand() * 120);
  const weekday = 0.9 + rand() * 0.08;
  return {
    arriveMinute,
    departMinute: arriveMinute + 450 + Math.floor(rand() * 120),
    spreadMinutes: 3 + rand() * 7,
    lunchMinute: 12 * 60 + Math.floor(rand() * 60),
    lunchMinutes: 30 + Math.floor(rand() * 30),
    lunchProbability: 0.5 + rand() * 0.4,
    attendance: [weekday, weekday, weekday, weekday, weekday - 0.15, 0.02, 0.01],
  };
}

const isoDate = (ms: number): string => new Date(ms).toISOString().slice(0, 10);
/** Monday = 0 .. Sunday = 6. */
const weekdayOf = (ms: number): number => (new Date(ms).getUTCDay() + 6) % 7;

/** Presence of `people` people (one PC each, PC i is person i's) over `days` days, seeded. */
export function generatePresence(options: PresenceOptions): PresenceDay[] {
  const out: PresenceDay[] = [];
  for (let person = 0; person < options.people; person += 1) {
    const habits = habitsOf(person, options.habitsSeed ?? options.seed);
    const rand = mulberry32((options.seed * 31 + person * 2_654_435_761 + 17) >>> 0);
    for (let d = 0; d < options.days; d += 1) {
      const midnight = options.firstDayMs + d * DAY;
      const comes = rand() < (habits.attendance[weekdayOf(midnight)] ?? 0);
      const arriveJitter = gaussian(rand) * habits.spreadMinutes;
      const departJitter = gaussian(rand) * habits.spreadMinutes * 2;
      const lunches = rand() < habits.lunchProbability;
      const lunchJitter = gaussian(rand) * 10;
      if (!comes) continue;
      const arrivesAt = midnight + Math.round((habits.arriveMinute + arriveJitter) * MIN);
      const leavesAt = Math.max(arrivesAt + 2 * HOUR, midnight + Math.round((habits.departMinute + departJitter) * MIN));
      const lunchFrom = midnight + Math.round((habits.lunchMinute + lunchJitter) * MIN);
      const lunch = lunches && lunchFrom > arrivesAt + 30 * MIN && lunchFrom + habits.lunchMinutes * MIN < leavesAt - 30 * MIN ? { from: lunchFrom, until: lunchFrom + habits.lunchMinutes * MIN } : null;
      out.push({ person, date: isoDate(midnight), arrivesAt, leavesAt, lunch, pc: person });
    }
  }
  return out.sort((a, b) => a.arrivesAt - b.arrivesAt || a.person - b.person);
}

/**
 * First taps of the weeks before `firstDayMs` (same habits, same seed): the office's history
 * that pre-staging starts from. `weeks` whole weeks, every day.
 */
export function arrivalHistory(people: number, firstDayMs: number, weeks: number, seed: number): number[][] {
  const history: number[][] = [...Array(people)].map(() => []);
  if (weeks <= 0) return history;
  const past = generatePresence({ people, firstDayMs: firstDayMs - weeks * 7 * DAY, days: weeks * 7, seed: seed + 1_000_003, habitsSeed: seed });
  for (const day of past) history[day.person]?.push(day.arrivesAt);
  return history;
}

/** Activity instants while someone sits at the PC (every `everyMs`, none during lunch). */
export function activityOf(day: PresenceDay, everyMs: number): number[] {
  const out: number[] = [];
  for (let t = day.arrivesAt; t < day.leavesAt; t += everyMs) {
    if (day.lunch && t >= day.lunch.from && t < day.lunch.until) continue;
    out.push(t);
  }
  return out;
}

// --- CSV ------------------------------------------------------------------------------------

/**
 * The columns of a presence CSV, in this order, with a header line:
 * `person,date,arrive,leave,lunch_out,lunch_back,pc`
 * - person: 1-based person number (person N's own PC is PC N);
 * - date: YYYY-MM-DD (local date of the pool, UTC);
 * - arrive, leave: HH:MM (first tap, last activity; leave after arrive, same day);
 * - lunch_out, lunch_back: HH:MM or both empty;
 * - pc: 1-based PC they sat at, empty for their own.
 * One row per person and day at the office; a day without a row is a day away.
 */
export const PRESENCE_CSV_COLUMNS = ['person', 'date', 'arrive', 'leave', 'lunch_out', 'lunch_back', 'pc'] as const;

const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be HH:MM (00:00–23:59)');
const optionalHhmm = z.union([z.literal(''), hhmm]);
const csvRowSchema = z
  .object({
    person: z.coerce.number().int().min(1, 'must be a person number from 1'),
    date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'must be YYYY-MM-DD').refine((d) => !Number.isNaN(Date.parse(`${d}T00:00:00Z`)), 'is not a calendar date'),
    arrive: hhmm,
    leave: hhmm,
    lunch_out: optionalHhmm,
    lunch_back: optionalHhmm,
    pc: z.union([z.literal(''), z.coerce.number().int().min(1, 'must be a PC number from 1')]),
  })
  .strict();

export class PresenceCsvInvalid extends Error {
  constructor(
    readonly line: number,
    readonly column: string | null,
    problem: string,
  ) {
    super(`presence CSV line ${line}${column ? `, column ${column}` : ''}: ${problem}`);
    this.name = 'PresenceCsvInvalid';
  }
}

const minutesOf = (t: string): number => Number(t.slice(0, 2)) * 60 + Number(t.slice(3, 5));

/**
 * Parses a presence CSV (see PRESENCE_CSV_COLUMNS). `people` bounds the person and PC numbers.
 * Throws PresenceCsvInvalid naming the line and column of the first problem.
 */
export function parsePresenceCsv(text: string, people: number): PresenceDay[] {
  const lines = text.split(/\r?\n/);
  const header = (lines[0] ?? '').split(',').map((c) => c.trim());
  if (header.join(',') !== PRESENCE_CSV_COLUMNS.join(',')) throw new PresenceCsvInvalid(1, null, `header must be "${PRESENCE_CSV_COLUMNS.join(',')}", found "${header.join(',')}"`);
  const out: PresenceDay[] = [];
  const seen = new Set<string>();
  for (let i = 1; i < lines.length; i += 1) {
    const raw = (lines[i] ?? '').trim();
    const lineNo = i + 1;
    if (raw === '' || raw.startsWith('#')) continue;
    const cells = raw.split(',').map((c) => c.trim());
    if (cells.length !== PRESENCE_CSV_COLUMNS.length) throw new PresenceCsvInvalid(lineNo, null, `expected ${PRESENCE_CSV_COLUMNS.length} columns, found ${cells.length}`);
    const record = Object.fromEntries(PRESENCE_CSV_COLUMNS.map((c, k) => [c, cells[k] ?? '']));
    const parsed = csvRowSchema.safeParse(record);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new PresenceCsvInvalid(lineNo, String(issue?.path[0] ?? ''), issue?.message ?? 'invalid');
    }
    const row = parsed.data;
    if (row.person > people) throw new PresenceCsvInvalid(lineNo, 'person', `person ${row.person} but the office has ${people}`);
    if (row.pc !== '' && row.pc > people) throw new PresenceCsvInvalid(lineNo, 'pc', `PC ${row.pc} but the office has ${people}`);
    if (minutesOf(row.leave) <= minutesOf(row.arrive)) throw new PresenceCsvInvalid(lineNo, 'leave', `leave ${row.leave} is not after arrive ${row.arrive}`);
    if ((row.lunch_out === '') !== (row.lunch_back === '')) throw new PresenceCsvInvalid(lineNo, row.lunch_out === '' ? 'lunch_out' : 'lunch_back', 'lunch_out and lunch_back are both set or both empty');
    if (row.lunch_out !== '' && !(minutesOf(row.arrive) < minutesOf(row.lunch_out) && minutesOf(row.lunch_out) < minutesOf(row.lunch_back) && minutesOf(row.lunch_back) < minutesOf(row.leave))) {
      throw new PresenceCsvInvalid(lineNo, 'lunch_out', 'lunch must lie between arrive and leave, lunch_out before lunch_back');
    }
    const key = `${row.person}/${row.date}`;
    if (seen.has(key)) throw new PresenceCsvInvalid(lineNo, 'date', `person ${row.person} already has a row for ${row.date}`);
    seen.add(key);
    const midnight = Date.parse(`${row.date}T00:00:00Z`);
    const at = (t: string): number => midnight + minutesOf(t) * MIN;
    out.push({
      person: row.person - 1,
      date: row.date,
      arrivesAt: at(row.arrive),
      leavesAt: at(row.leave),
      lunch: row.lunch_out === '' ? null : { from: at(row.lunch_out), until: at(row.lunch_back) },
      pc: row.pc === '' ? row.person - 1 : row.pc - 1,
    });
  }
  return out.sort((a, b) => a.arrivesAt - b.arrivesAt || a.person - b.person);
}

const clock = (ms: number): string => new Date(ms).toISOString().slice(11, 16);

/** The same days as a presence CSV (round-trips through parsePresenceCsv at minute precision). */
export function formatPresenceCsv(days: readonly PresenceDay[]): string {
  const rows = days.map((d) => [d.person + 1, d.date, clock(d.arrivesAt), clock(d.leavesAt), d.lunch ? clock(d.lunch.from) : '', d.lunch ? clock(d.lunch.until) : '', d.pc === d.person ? '' : d.pc + 1].join(','));
  return `${PRESENCE_CSV_COLUMNS.join(',')}\n${rows.join('\n')}\n`;
}
