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

const WEEKDAYS: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };
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
        weekday: 'short',
      });
    } catch {
      throw new InvalidClockError(`Unknown time zone "${timeZone}"`);
    }
    formatters.set(timeZone, f);
  }
  return f;
}

export function localTime(at: Millis, timeZone: string): LocalTime {
  const parts: Record<string, string> = {};
  for (const p of formatterFor(timeZone).formatToParts(new Date(at))) parts[p.type] = p.value;
  const weekday = WEEKDAYS[parts.weekday ?? ''];
  if (weekday === undefined) throw new InvalidClockError(`Cannot read the weekday in "${timeZone}"`);
  return {
    weekday,
    minuteOfDay: Number(parts.hour) * 60 + Number(parts.minute),
    date: `${parts.year}-${parts.month}-${parts.day}`,
  };
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
  const lt = localTime(now, timeZone);
  const startOfMinute = now - (now % 60_000);
  return startOfMinute + (minuteOfDay - lt.minuteOfDay) * 60_000;
}
