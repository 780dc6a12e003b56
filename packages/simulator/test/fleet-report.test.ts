// The multi-day report's arithmetic on a hand-made record: two PCs, one night and morning.
import { describe, expect, it } from 'vitest';
import { FLEET_POWER_WATTS, computeFleetReport, magicPacketTarget, parseFleetArgs, renderFleetHtml, type FleetRecord, type PresenceDay } from '../src/index.js';

const H = 3_600_000;
const MON = Date.UTC(2026, 0, 12);
const at = (h: number): number => MON + h * H;

function record(overrides: Partial<FleetRecord> = {}): FleetRecord {
  // Person 0 leaves at 18:00, is pre-staged at 08:00, comes in at 08:30. Person 1 leaves at 18:00
  // and comes in at 09:00 to a desktop restored at 09:00:30.
  const presence: PresenceDay[] = [
    { person: 0, date: '2026-01-13', arrivesAt: at(32.5), leavesAt: at(40), lunch: null, pc: 0 },
    { person: 1, date: '2026-01-13', arrivesAt: at(33), leavesAt: at(40), lunch: null, pc: 1 },
  ];
  return {
    startMs: at(17),
    endMs: at(35),
    pcs: 2,
    pcCores: 8,
    night: { startMinute: 19 * 60, endMinute: 7 * 60 },
    presence,
    desktopOf: (p) => `desk-${p}`,
    signIns: new Map(),
    intervals: [
      { domain: 'desk-0', pc: 0, from: at(17), until: at(19) },
      { domain: 'desk-1', pc: 1, from: at(17), until: at(19) },
      // Batch fills PC 0 all night; PC 1 only until 01:00.
      { domain: 'dp-task-a', pc: 0, from: at(19), until: at(31) },
      { domain: 'dp-task-b', pc: 1, from: at(19), until: at(25) },
      { domain: 'desk-0', pc: 0, from: at(32), until: null },
      { domain: 'desk-1', pc: 1, from: at(33) + 30_000, until: null },
    ],
    // PC 1 sleeps from 01:00 to 09:00.
    sleeps: [{ pc: 1, from: at(25), until: at(33) }],
    // Demand all night until 01:00, none after.
    demand: [
      { at: at(17), queuedTasks: 5, queuedCores: 40 },
      { at: at(25), queuedTasks: 0, queuedCores: 0 },
    ],
    taskCores: () => 8,
    completions: [{ at: at(25), cores: 8, workMs: 6 * H }],
    tasks: { submitted: 2, byState: { succeeded: 1, checkpointed: 1 } },
    latencies: [
      { type: 'presence', queueMs: 2, handleMs: 30 },
      { type: 'presence', queueMs: 4, handleMs: 50 },
    ],
    realSeconds: 10,
    speed: 1000,
    ...overrides,
  };
}

describe('fleet report', () => {
  const r = computeFleetReport(record());

  it('counts an arrival to a running desktop as instant and measures the other wait', () => {
    expect(r.mornings).toMatchObject({ count: 2, instant: 1, instantRatio: 0.5, missing: 0, afterSuspend: 2, instantAfterSuspend: 1 });
    // A desktop left running all night is not a pre-staging success.
    const neverSuspended = computeFleetReport(record({ intervals: [{ domain: 'desk-0', pc: 0, from: at(17), until: null }] }));
    expect(neverSuspended.mornings).toMatchObject({ instant: 1, afterSuspend: 1, instantAfterSuspend: 0, instantAfterSuspendRatio: 0 });
    expect(r.mornings.waitS.max).toBe(30);
  });

  it('measures harvest only where batch demand was present', () => {
    // 19:00–01:00 both PCs idle with demand (12 PC-hours), both used; 01:00–07:00 PC 0 used by
    // batch counts as available-and-used (running work), PC 1 asleep without demand does not.
    expect(r.harvest.availablePcHours).toBe(18);
    expect(r.harvest.usedPcHours).toBe(18);
    expect(r.harvest.ratio).toBe(1);
  });

  it('prices energy with the per-state figures and charges batch-only PCs to batch', () => {
    const w = FLEET_POWER_WATTS;
    const desktopHours = 2 + 2 + 3 + 2 - 30 / 3600; // desk-0 17–19 and 08–11, desk-1 17–19 and 09:00:30–11
    const batchWh = 12 * (w.pcIdle + 8 * w.batchCore) + 6 * (w.pcIdle + 8 * w.batchCore);
    const asleepWh = 8 * w.asleep;
    const totalHours = 2 * 18;
    const onIdleHours = totalHours - 12 - 6 - 8 - desktopHours;
    const officeWh = desktopHours * (w.pcIdle + w.desktop) + onIdleHours * w.pcIdle + asleepWh;
    expect(r.energy.batchKWh).toBeCloseTo(batchWh / 1000, 2);
    expect(r.energy.officeKWh).toBeCloseTo(officeWh / 1000, 2);
    expect(r.energy.alwaysOnKWh).toBeCloseTo(((w.pcIdle + w.desktop) * totalHours) / 1000, 3);
    expect(r.energy.asleepPcHours).toBe(8);
  });

  it('finds the pre-staged desktop and its lead', () => {
    expect(r.preStaging).toMatchObject({ stagings: 1, hits: 1, precision: 1, recall: 0.5, arrivalsAtOwnPc: 2 });
    expect(r.preStaging.leadMinutes.p50).toBe(30);
  });

  it('reports latencies per event type, throughput per day, and draws the charts', () => {
    expect(r.controlPlane.byType.presence).toMatchObject({ count: 2, handleMsP99: 50 });
    expect(r.batch.perDay).toContainEqual({ date: '2026-01-13', completed: 1, coreHours: 48 });
    expect(r.timeline.length).toBeGreaterThan(10);
    const html = renderFleetHtml(r, 'test <office>');
    expect(html).toContain('<svg');
    expect(html).toContain('test &lt;office&gt;');
  });
});

describe('fleet pieces', () => {
  it('reads the MAC out of a Wake-on-LAN magic packet and refuses anything else', () => {
    const mac = Buffer.from([0x52, 0x54, 0, 1, 0, 0x2a]);
    const packet = Buffer.concat([Buffer.alloc(6, 0xff), ...Array(16).fill(mac)]);
    expect(magicPacketTarget(packet)).toBe('52:54:00:01:00:2a');
    expect(magicPacketTarget(packet.subarray(0, 60))).toBeNull();
    expect(magicPacketTarget(Buffer.concat([Buffer.alloc(6, 0), ...Array(16).fill(mac)]))).toBeNull();
  });

  it('parses the multi-day flags and names a bad one', () => {
    expect(parseFleetArgs(['--days', '7', '--pcs=100', '--no-power-management', '--setup', 'database'])).toMatchObject({ days: 7, pcs: 100, powerManagement: false, setup: 'database', poolSize: 50 });
    expect(() => parseFleetArgs(['--days', '0'])).toThrow(/--days/);
    expect(() => parseFleetArgs(['--days', '2', '--setup', 'magic'])).toThrow(/--setup/);
    expect(() => parseFleetArgs(['--days', '2', '--weeks', '2'])).toThrow(/unknown flag/);
  });
});
