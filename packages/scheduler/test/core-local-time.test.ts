import { describe, expect, it } from 'vitest';
import { InvalidClockError, localTime } from '../src/core/index.js';
import { localWeekdayMinute } from '../src/core/local-time.js';

const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

const formatters = new Map<string, Intl.DateTimeFormat>();

function viaIntl(t: number, timeZone: string) {
  let f = formatters.get(timeZone);
  if (!f) formatters.set(timeZone, (f = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', weekday: 'short' })));
  const p: Record<string, string> = {};
  for (const x of f.formatToParts(new Date(t))) p[x.type] = x.value;
  return { weekday: WEEKDAYS.indexOf(p.weekday ?? ''), minuteOfDay: Number(p.hour) * 60 + Number(p.minute), date: `${p.year}-${p.month}-${p.day}` };
}

describe('local time in a pool time zone (cached offsets)', () => {
  it('agrees with Intl across a whole year, DST switches and half-hour zones included', () => {
    for (const tz of ['Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kathmandu']) {
      for (let t = Date.UTC(2026, 0, 1); t < Date.UTC(2027, 0, 1); t += 97 * 60_000 + 7_000) {
        const intl = viaIntl(t, tz);
        expect({ tz, t, ...localTime(t, tz) }).toEqual({ tz, t, ...intl });
        expect({ tz, t, ...localWeekdayMinute(t, tz) }).toEqual({ tz, t, weekday: intl.weekday, minuteOfDay: intl.minuteOfDay });
      }
    }
  });

  it('agrees minute by minute around the Berlin spring-forward switch', () => {
    const switchAt = Date.UTC(2026, 2, 29, 1, 0);
    for (let t = switchAt - 2 * 3600_000; t < switchAt + 2 * 3600_000; t += 60_000) expect(localTime(t, 'Europe/Berlin')).toEqual(viaIntl(t, 'Europe/Berlin'));
  });

  it('names the problem when a time zone is unknown', () => {
    expect(() => localTime(0, 'Mars/Olympus')).toThrow(InvalidClockError);
  });
});
