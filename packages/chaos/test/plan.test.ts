import { describe, expect, it } from 'vitest';
import { ChaosOptionsInvalid, parseChaosArgs } from '../src/options.js';
import { activityOf, buildPlan, FAULT_KINDS, HEARTBEAT_TIMEOUT_MS } from '../src/plan.js';

const base = { seed: 7, faults: 60, pcs: 50, fleets: 4, faultSpacingSeconds: 8, sloSeconds: 90, tapShare: 0.8 };

describe('the chaos plan', () => {
  it('is the same for the same seed and differs for another', () => {
    expect(buildPlan(base)).toEqual(buildPlan(base));
    expect(buildPlan({ ...base, seed: 8 }).faults).not.toEqual(buildPlan(base).faults);
  });

  it('injects the asked number of faults, in order, of every kind over a long run, on real targets', () => {
    const plan = buildPlan({ ...base, faults: 300 });
    expect(plan.faults).toHaveLength(300);
    expect(new Set(plan.faults.map((f) => f.kind))).toEqual(new Set(FAULT_KINDS));
    for (let i = 1; i < plan.faults.length; i += 1) expect(plan.faults[i]!.at).toBeGreaterThan(plan.faults[i - 1]!.at);
    for (const f of plan.faults) {
      if (f.kind === 'kill-api' || f.kind === 'kill-worker') expect([0, 1]).toContain(f.target);
      if (f.kind === 'kill-fleet') expect(f.target).toBeLessThan(base.fleets);
      if (f.kind === 'partition-host') expect(f.durationMs).toBeGreaterThan(HEARTBEAT_TIMEOUT_MS);
      if (f.kind === 'partition-host' || f.kind === 'clock-skew' || f.kind === 'slow-disk') expect(f.target).toBeLessThan(base.pcs);
    }
  });

  it('ends after every tap has had its SLO from the end of the faults', () => {
    const plan = buildPlan(base);
    for (const p of plan.people) if (p.tapsAt !== null) expect(Math.max(p.tapsAt, plan.faultsEndAt) + plan.sloMs).toBeLessThanOrEqual(plan.endAt);
    expect(plan.faultsEndAt).toBeGreaterThanOrEqual(plan.faults.at(-1)!.at);
  });

  it('injects only the asked kinds of fault when --fault-kinds narrows them', () => {
    const plan = buildPlan({ ...base, faults: 40, faultKinds: ['partition-host', 'kill-api'] });
    expect(plan.faults).toHaveLength(40);
    expect(new Set(plan.faults.map((f) => f.kind))).toEqual(new Set(['partition-host', 'kill-api']));
  });

  it('gives each person activity until they leave and from their tap on', () => {
    const [p] = buildPlan(base).people;
    const start = 1_000_000;
    const act = activityOf({ ...p!, leavesAt: 6000, tapsAt: 100_000 }, start, start + 112_000);
    expect(act).toEqual({ evening: [0, 5000], morning: [start + 100_000, start + 105_000, start + 110_000] });
  });
});

describe('chaos flags', () => {
  it('reads the documented flags', () => {
    const o = parseChaosArgs(['--faults', '50', '--seed=9', '--pcs', '300', '--test-only-disable-fencing']);
    expect(o).toMatchObject({ faults: 50, seed: 9, pcs: 300, testOnlyDisableFencing: true, fleets: 4 });
  });

  it('reads --fault-kinds as a comma-separated list and names an unknown kind', () => {
    expect(parseChaosArgs(['--fault-kinds', 'partition-host,kill-api']).faultKinds).toEqual(['partition-host', 'kill-api']);
    expect(parseChaosArgs([]).faultKinds).toBeUndefined();
    try {
      parseChaosArgs(['--fault-kinds', 'partition-host,meteor']);
      expect.unreachable();
    } catch (err) {
      expect((err as ChaosOptionsInvalid).problems.join('\n')).toMatch(/--fault-kinds/);
    }
  });

  it('names every bad flag at once', () => {
    try {
      parseChaosArgs(['--faults', 'many', '--sed', '3']);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ChaosOptionsInvalid);
      expect((err as ChaosOptionsInvalid).problems.join('\n')).toMatch(/--sed: unknown flag[\s\S]*--faults:/);
    }
  });
});
