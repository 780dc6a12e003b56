import type { PoolPolicy } from './types.js';

const MINUTE = 60_000;

/** A sensible office default; pools override what they need. Idle threshold: 15 minutes. */
export function defaultPolicy(overrides: Partial<PoolPolicy> = {}): PoolPolicy {
  return {
    timeZone: 'UTC',
    officeHours: { days: [1, 2, 3, 4, 5], start: '08:00', end: '18:00' },
    idleThresholdMs: 15 * MINUTE,
    nightWindow: { start: '19:00', end: '07:00' },
    suspendIdleAnyTime: false,
    batchWindow: 'outsideOfficeHours',
    maxBatchShareWhileOwnerPresent: 0.25,
    preStaging: { enabled: true, leadMs: 10 * MINUTE, dailyBudgetCoreMs: 8 * 3600_000, historyWeeks: 6 },
    powerManagement: true,
    storageMode: 'local',
    checkpointGraceMs: 30_000,
    morningDrainLeadMs: 20 * MINUTE,
    augment: { enabled: true, maxExtraCores: 2, maxExtraMemoryMiB: 4096 },
    ...overrides,
  };
}
