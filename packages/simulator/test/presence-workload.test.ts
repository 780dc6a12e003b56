import { describe, expect, it } from 'vitest';
import { PresenceCsvInvalid, activityOf, arrivalHistory, coreHoursOf, formatPresenceCsv, generatePresence, generateWorkload, parsePresenceCsv, DEFAULT_WORKLOAD } from '../src/index.js';

const MONDAY = Date.UTC(2026, 0, 12);
const DAY = 86_400_000;

describe('generated presence', () => {
  const week = generatePresence({ people: 40, firstDayMs: MONDAY, days: 7, seed: 5 });

  it('is the same for the same seed and differs for another', () => {
    expect(generatePresence({ people: 40, firstDayMs: MONDAY, days: 7, seed: 5 })).toEqual(week);
    expect(generatePresence({ people: 40, firstDayMs: MONDAY, days: 7, seed: 6 })).not.toEqual(week);
  });

  it('fills weekdays, leaves weekends nearly empty, and keeps each day in order', () => {
    const perDay = [...Array(7).keys()].map((d) => week.filter((p) => p.date === new Date(MONDAY + d * DAY).toISOString().slice(0, 10)).length);
    for (const n of perDay.slice(0, 4)) expect(n).toBeGreaterThan(30);
    for (const n of perDay.slice(5)) expect(n).toBeLessThan(5);
    for (const p of week) {
      expect(p.arrivesAt).toBeLessThan(p.leavesAt);
      if (p.lunch) expect(p.arrivesAt < p.lunch.from && p.lunch.from < p.lunch.until && p.lunch.until < p.leavesAt).toBe(true);
    }
  });

  it('gives no activity during lunch and a history of earlier weeks', () => {
    const withLunch = week.find((p) => p.lunch);
    if (!withLunch?.lunch) throw new Error('nobody took lunch');
    const lunch = withLunch.lunch;
    const taps = activityOf(withLunch, 5 * 60_000);
    expect(taps.some((t) => t >= lunch.from && t < lunch.until)).toBe(false);
    expect(taps[0]).toBe(withLunch.arrivesAt);
    const history = arrivalHistory(40, MONDAY, 2, 5);
    expect(history).toHaveLength(40);
    for (const h of history) for (const t of h) expect(t).toBeLessThan(MONDAY);
    // The same people: earlier weeks' arrivals lie near this week's (same habits, other days).
    const minuteOf = (t: number): number => (t % DAY) / 60_000;
    for (const p of week.filter((d) => d.date === '2026-01-13')) {
      const past = (history[p.person] ?? []).map(minuteOf);
      if (past.length === 0) continue;
      const closest = Math.min(...past.map((m) => Math.abs(m - minuteOf(p.arrivesAt))));
      expect(closest).toBeLessThan(45);
    }
  });
});

describe('presence CSV', () => {
  const header = 'person,date,arrive,leave,lunch_out,lunch_back,pc';

  it('round-trips generated days', () => {
    const days = generatePresence({ people: 10, firstDayMs: MONDAY, days: 3, seed: 1 });
    const byKey = (xs: typeof days) => [...xs].sort((a, b) => a.person - b.person || a.date.localeCompare(b.date));
    const again = byKey(parsePresenceCsv(formatPresenceCsv(days), 10));
    const before = byKey(days);
    expect(again.map((d) => [d.person, d.date, d.pc, !!d.lunch])).toEqual(before.map((d) => [d.person, d.date, d.pc, !!d.lunch]));
    for (const [i, d] of again.entries()) expect(Math.abs(d.arrivesAt - (before[i]?.arrivesAt ?? 0))).toBeLessThan(60_000);
  });

  it('reads a hot-desker and a day without lunch', () => {
    const days = parsePresenceCsv(`${header}\n1,2026-01-12,08:00,17:00,12:00,12:45,\n2,2026-01-12,09:10,18:00,,,3\n`, 3);
    expect(days).toEqual([
      { person: 0, date: '2026-01-12', arrivesAt: MONDAY + 8 * 3_600_000, leavesAt: MONDAY + 17 * 3_600_000, lunch: { from: MONDAY + 12 * 3_600_000, until: MONDAY + 12.75 * 3_600_000 }, pc: 0 },
      { person: 1, date: '2026-01-12', arrivesAt: MONDAY + (9 * 60 + 10) * 60_000, leavesAt: MONDAY + 18 * 3_600_000, lunch: null, pc: 2 },
    ]);
  });

  it('names the line and column of a bad row', () => {
    const bad = (row: string, people = 5): PresenceCsvInvalid => {
      try {
        parsePresenceCsv(`${header}\n1,2026-01-12,08:00,17:00,,,\n${row}\n`, people);
      } catch (err) {
        if (err instanceof PresenceCsvInvalid) return err;
        throw err;
      }
      throw new Error(`accepted: ${row}`);
    };
    expect(bad('2,2026-01-12,8am,17:00,,,')).toMatchObject({ line: 3, column: 'arrive' });
    expect(bad('2,2026-13-40,08:00,17:00,,,')).toMatchObject({ line: 3, column: 'date' });
    expect(bad('9,2026-01-12,08:00,17:00,,,')).toMatchObject({ line: 3, column: 'person' });
    expect(bad('2,2026-01-12,08:00,07:00,,,')).toMatchObject({ line: 3, column: 'leave' });
    expect(bad('2,2026-01-12,08:00,17:00,12:00,,')).toMatchObject({ line: 3, column: 'lunch_back' });
    expect(bad('1,2026-01-12,09:00,17:00,,,')).toMatchObject({ line: 3, column: 'date' });
    expect(bad('2,2026-01-12,08:00,17:00,,')).toMatchObject({ line: 3, column: null });
    expect(bad('2,2026-01-12,08:00,17:00,,,x').message).toMatch(/line 3, column pc/);
    expect(() => parsePresenceCsv('who,when\n', 3)).toThrow(/line 1: header/);
  });
});

describe('batch workload', () => {
  const options = { ...DEFAULT_WORKLOAD, firstDayMs: MONDAY, days: 5, seed: 2, coreHoursPerDay: 2000 };

  it('is seeded, sorted by submission, and near the asked volume', () => {
    const jobs = generateWorkload(options);
    expect(generateWorkload(options)).toEqual(jobs);
    expect(generateWorkload({ ...options, seed: 3 })).not.toEqual(jobs);
    expect(jobs.map((j) => j.submitAt)).toEqual([...jobs.map((j) => j.submitAt)].sort((a, b) => a - b));
    const perDay = coreHoursOf(jobs) / 5;
    expect(perDay).toBeGreaterThan(1500);
    expect(perDay).toBeLessThan(3500);
    for (const j of jobs) {
      expect(options.coreChoices).toContain(j.cores);
      expect(j.workMs).toBeGreaterThanOrEqual(15 * 60_000);
      expect(j.taskCount).toBeGreaterThanOrEqual(1);
    }
    expect(jobs.some((j) => !j.checkpointable)).toBe(true);
    expect(jobs.some((j) => j.checkpointable)).toBe(true);
  });
});
