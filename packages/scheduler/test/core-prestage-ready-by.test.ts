// Pre-staging and the morning drain aim at a person's earliest recent arrival, not the median:
// someone who usually comes at 08:30 but sometimes at 08:10 finds the desktop running either way.
import { describe, expect, it } from 'vitest';
import { defaultPolicy, plan, predictArrival, readyByToday } from '../src/core/index.js';
import { commands, DAY, MINUTE, step, World } from './core-fixtures.js';

const WEEK = 7 * DAY;
/** Monday 30 November 2026, 00:00 UTC. */
const MONDAY = Date.UTC(2026, 10, 30);
const at = (h: number, m = 0) => MONDAY + h * 3600_000 + m * MINUTE;
/** Bob's last four Mondays: 08:30, 08:10, 08:35, 08:30 (median 08:30, earliest 08:10). */
const bobArrivals = [at(8, 30) - WEEK, at(8, 10) - 2 * WEEK, at(8, 35) - 3 * WEEK, at(8, 30) - 4 * WEEK];

describe('ready-by time', () => {
  const policy = defaultPolicy();
  const user = (arrivals: number[]) => ({ id: 'u', poolId: 'p1', homeHostId: null, arrivals, preStage: null });

  it('is the earliest recent same-weekday arrival, never after the prediction', () => {
    expect(predictArrival(user(bobArrivals), policy, at(5))).toBe(at(8, 30));
    expect(readyByToday(user(bobArrivals), policy, at(5))).toBe(at(8, 10));
    const steady = [1, 2, 3].map((k) => at(8, 30) - k * WEEK);
    expect(readyByToday(user(steady), policy, at(5))).toBe(at(8, 30));
  });

  it('ignores other weekdays and weeks beyond the history, and has none without history', () => {
    // An early Tuesday and an early arrival seven weeks back do not count.
    const arrivals = [...bobArrivals, at(7, 0) - WEEK + DAY, at(7, 0) - 7 * WEEK];
    expect(readyByToday(user(arrivals), policy, at(5))).toBe(at(8, 10));
    expect(readyByToday(user([]), policy, at(5))).toBeNull();
  });
});

describe('pre-staging before the earliest arrival', () => {
  const world = () => {
    const w = new World().pool('p1').person('bob', 'h1', { state: 'SUSPENDED', hostId: null, savedState: { kind: 'shared' } });
    w.s.users.bob!.arrivals = bobArrivals;
    return w;
  };

  it('restores the desktop a lead before the earliest arrival and records the median as the prediction', () => {
    const { plan: p, next } = step(world().s, { id: 'pre', type: 'tick', timer: 'preStage' }, at(8, 5));
    expect(commands(p, 'restoreDesktop')).toMatchObject([{ vmId: 'vm-bob', hostId: 'h1' }]);
    expect(next.users.bob?.preStage).toMatchObject({ predictedAt: at(8, 30) });
  });

  it('does not restore earlier than the lead before the earliest arrival', () => {
    expect(commands(plan(world().s, { id: 'pre', type: 'tick', timer: 'preStage' }, undefined, at(7, 55)), 'restoreDesktop')).toHaveLength(0);
  });

  it('drains batch from the PC before the earliest arrival', () => {
    const w = new World().pool('p1').person('bob', 'h1', { state: 'SUSPENDED', hostId: null, savedState: { kind: 'shared' } }).job('j').task('t', 'j', { state: 'RUNNING', hostId: 'h1' });
    // An hour later than bobArrivals (after office hours start, so only the arrival counts):
    // median 09:30, earliest 09:10.
    w.s.users.bob!.arrivals = bobArrivals.map((a) => a + 3600_000);
    // 08:55 is 15 minutes before 09:10 (inside the 20-minute drain lead), 35 before the median.
    expect(commands(plan(w.s, { id: 'd', type: 'tick', timer: 'morningDrain' }, undefined, at(8, 55)), 'checkpointBatch')).toHaveLength(1);
    expect(commands(plan(w.s, { id: 'd2', type: 'tick', timer: 'morningDrain' }, undefined, at(8, 45)), 'checkpointBatch')).toHaveLength(0);
  });
});
