import { describe, expect, it } from 'vitest';
import { DemoOptionsInvalid, buildScenario, countedOn, progressSteps, doubleRuns, energy, mornings, parseDemoArgs, percentile, POWER_WATTS, type RunInterval } from '../src/index.js';

const H = 3_600_000;

describe('scenario', () => {
  it('is the same office for the same seed and another for another seed', () => {
    expect(buildScenario(20, 3)).toEqual(buildScenario(20, 3));
    expect(buildScenario(20, 3).people.map((p) => p.leavesAt)).not.toEqual(buildScenario(20, 4).people.map((p) => p.leavesAt));
  });

  it('sends hot-deskers to the PCs of people who are away, and signs them in there', () => {
    const s = buildScenario(50, 1);
    const away = new Set(s.people.filter((p) => p.absent).map((p) => p.homePc));
    const hotDeskers = s.people.filter((p) => p.morningPc !== null && p.morningPc !== p.homePc);
    expect(hotDeskers.length).toBeGreaterThan(0);
    for (const p of hotDeskers) {
      expect(away.has(p.morningPc ?? -1)).toBe(true);
      expect(s.signIns).toContainEqual({ person: p.index, pc: p.morningPc, at: (p.arrivesAt ?? 0) + 20_000 });
    }
    for (const p of s.people) expect(p.leavesAt).toBeLessThan(p.arrivesAt ?? Infinity);
  });
});

describe('metrics', () => {
  const run = (domain: string, pc: number, from: number, until: number | null): RunInterval => ({ domain, pc, from, until });

  it('percentiles by rank', () => {
    expect(percentile([], 50)).toBeNull();
    expect(percentile([5, 1, 3, 2, 4], 50)).toBe(3);
    expect(percentile([5, 1, 3, 2, 4], 100)).toBe(5);
  });

  it('finds a domain running on two PCs at once, not one after the other', () => {
    expect(doubleRuns([run('d', 0, 0, 10), run('d', 1, 10, 20)])).toEqual([]);
    expect(doubleRuns([run('d', 0, 0, 10), run('d', 1, 5, null)])).toEqual([{ domain: 'd', pcs: [0, 1], at: 5 }]);
  });

  it('measures the morning wait from the tap, and counts a desktop back before the tap as pre-staged', () => {
    const [p] = buildScenario(10, 1).people.filter((x) => !x.absent && x.morningPc === x.homePc);
    if (!p || p.arrivesAt === null) throw new Error('scenario has no ordinary arrival');
    const d = 'desk';
    const late = mornings([p], () => d, [run(d, p.homePc, p.leavesAt - H, p.leavesAt + H), run(d, p.homePc, p.arrivesAt + 5000, null)], () => null);
    expect(late[0]).toMatchObject({ waitMs: 5000, preStaged: false });
    const early = mornings([p], () => d, [run(d, p.homePc, p.leavesAt - H, p.leavesAt + H), run(d, p.homePc, p.arrivesAt - 60_000, null)], () => null);
    expect(early[0]).toMatchObject({ waitMs: 0, preStaged: true });
    expect(mornings([p], () => d, [], () => null)[0]?.waitMs).toBeNull();
  });

  it('prices energy with the stated power figures', () => {
    const e = energy(1, [run('desk', 0, 0, H), run('dp-task-1', 0, H, 2 * H)], 0, 2 * H, 2);
    expect(e.alwaysOnKWh).toBeCloseTo(((POWER_WATTS.pcIdle + POWER_WATTS.desktop) * 2) / 1000);
    expect(e.batchKWh).toBeCloseTo((POWER_WATTS.batchCore * 2) / 1000);
    expect(e.actualKWh).toBeCloseTo((POWER_WATTS.pcIdle * 2 + POWER_WATTS.desktop + POWER_WATTS.batchCore * 2) / 1000);
  });
});

describe('flags', () => {
  it('parses and validates them, naming the bad one', () => {
    expect(parseDemoArgs(['--speed', '500', '--pcs=8', '--stay'])).toMatchObject({ speed: 500, pcs: 8, stay: true, seed: 1 });
    expect(() => parseDemoArgs(['--pcs', '1'])).toThrow(/--pcs/);
    expect(() => parseDemoArgs(['--speed', 'fast'])).toThrow(DemoOptionsInvalid);
    expect(() => parseDemoArgs(['--nights', '2'])).toThrow(/unknown flag/);
    expect(parseDemoArgs([], { DATABASE_URL: 'postgresql://x@h/db' }).databaseUrl).toBe('postgresql://x@h/db');
  });

  it('--real is three PCs with their own defaults, and refuses another PC count', () => {
    expect(parseDemoArgs([])).toMatchObject({ real: false, pcs: 50, speed: 500, tasksPerPc: 4, taskHours: 4 });
    expect(parseDemoArgs(['--real'])).toMatchObject({ real: true, pcs: 3, speed: 600, tasksPerPc: 1, taskHours: 1 });
    expect(parseDemoArgs(['--real', '--speed', '900', '--pcs', '3'])).toMatchObject({ real: true, pcs: 3, speed: 900 });
    expect(() => parseDemoArgs(['--real', '--pcs', '8'])).toThrow(/--pcs: --real runs exactly 3 PCs/);
  });
});

describe('batch guest output (--real)', () => {
  it('reads the count-to steps and tells a task that counted on from one that started over', () => {
    const log = 'DESKPOOL-GUEST READY\nPROGRESS 1/5\nPROGRESS 2/5\r\nPROGRESS 3/5\nRESULT count=5\n';
    expect(progressSteps(log)).toEqual([1, 2, 3]);
    expect(countedOn([1, 2, 3])).toBe(true);
    expect(countedOn([])).toBe(true);
    expect(countedOn([1, 2, 1, 2, 3])).toBe(false);
    expect(countedOn([1, 2, 4])).toBe(false);
  });
});
