import type { ClockWindow, Millis, PoolPolicy } from './types.js';

/** Wall-clock facts about an instant in a pool's time zone. */
export interface LocalTime {
  /** 0 = Sunday … 6 = Saturday. */
  weekday: number;
  minuteOfDay: number;
  /** YYYY-MM-DD, the local calendar date. */
  date: string;
}

export class InvalidClockError extends Error {
  constructor(message: string) {
    super(`${message}. Fix the pool policy: times are "HH:MM" (24 h) and time zones IANA names like "Europe/Berlin".`);
    this.name = 'InvalidClockError';
  }
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone,
        hourCycle: 'h23',
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
        minute: '2-digit',
      });
    } catch {
      throw new InvalidClockError(`Unknown time zone "${timeZone}"`);
    }
    formatters.set(timeZone, f);
  }
  return f;
}

const QUARTER_HOUR = 900_000;
/** UTC offsets by time zone and quarter hour: zone changes happen on quarter-hour boundaries. */
const offsets = new Map<string, number>();

function offsetAt(at: Millis, timeZone: string): number {
  const bucket = Math.floor(at / QUARTER_HOUR);
  const key = `${timeZone}|${bucket}`;
  let off = offsets.get(key);
  if (off === undefined) {
    const start = bucket * QUARTER_HOUR;
    const parts: Record<string, string> = {};
    for (const p of formatterFor(timeZone).formatToParts(new Date(start))) parts[p.type] = p.value;
    const wall = Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day), Number(parts.hour), Number(parts.minute));
    if (Number.isNaN(wall)) throw new InvalidClockError(`Cannot read the local time in "${timeZone}"`);
    off = wall - start;
    if (offsets.size > 100_000) offsets.clear();
    offsets.set(key, off);
  }
  return off;
}

/**
 * Wall-clock facts in `timeZone`. The zone's offset is looked up once per quarter hour and
 * cached, because planning reads thousands of arrival times and Intl formatting is slow.
 */
export function localTime(at: Millis, timeZone: string): LocalTime {
  const local = new Date(at + offsetAt(at, timeZone));
  return {
    weekday: local.getUTCDay(),
    minuteOfDay: local.getUTCHours() * 60 + local.getUTCMinutes(),
    date: local.toISOString().slice(0, 10),
  };
}

/** Just the weekday and minute of day: no date string, for hot loops over arrival times. */
export function localWeekdayMinute(at: Millis, timeZone: string): { weekday: number; minuteOfDay: number } {
  const local = at + offsetAt(at, timeZone);
  const dayIndex = Math.floor(local / 86_400_000);
  const minuteOfDay = Math.floor((local - dayIndex * 86_400_000) / 60_000);
  // 1970-01-01 was a Thursday (weekday 4).
  return { weekday: (((dayIndex + 4) % 7) + 7) % 7, minuteOfDay };
}

export function parseClock(hhmm: string): number {
  const m = /^(\d{2}):(\d{2})$/.exec(hhmm);
  if (!m || Number(m[1]) > 23 || Number(m[2]) > 59) throw new InvalidClockError(`Bad clock time "${hhmm}"`);
  return Number(m[1]) * 60 + Number(m[2]);
}

/** Half-open [start, end); a window whose end is before its start wraps midnight. */
export function inClockWindow(minuteOfDay: number, window: ClockWindow): boolean {
  const start = parseClock(window.start);
  const end = parseClock(window.end);
  if (start === end) return true;
  return start < end ? minuteOfDay >= start && minuteOfDay < end : minuteOfDay >= start || minuteOfDay < end;
}

export function isOfficeTime(lt: LocalTime, policy: PoolPolicy): boolean {
  return policy.officeHours.days.includes(lt.weekday) && inClockWindow(lt.minuteOfDay, policy.officeHours);
}

export function isNight(lt: LocalTime, policy: PoolPolicy): boolean {
  return inClockWindow(lt.minuteOfDay, policy.nightWindow);
}

/**
 * The instant, on the same local day as `now`, whose wall clock reads `minuteOfDay`.
 * Uses the offset at `now`; off by the DST jump only on the two switch days, which is
 * harmless for predictions measured in minutes.
 */
export function instantAtLocalMinute(now: Millis, timeZone: string, minuteOfDay: number): Millis {
  const lt = localWeekdayMinute(now, timeZone);
  const startOfMinute = now - (now % 60_000);
  return startOfMinute + (minuteOfDay - lt.minuteOfDay) * 60_000;
}
