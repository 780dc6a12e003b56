import { describe, expect, it } from 'vitest';
import { check, type Evidence } from '../src/check.js';

const T = Date.UTC(2026, 10, 26, 20, 0);
const S = 1000;

/** A night where everything went right: one desktop suspended and restored, one task done. */
function goodNight(): Evidence {
  return {
    intervals: [
      { domain: 'desk-a', pc: 0, from: T, until: T + 60 * S },
      { domain: 'dp-task-t1', pc: 0, from: T + 70 * S, until: T + 100 * S },
      { domain: 'desk-a', pc: 0, from: T + 130 * S, until: null },
    ],
    desktops: [{ vmId: 'vm-a', domain: 'desk-a', homePc: 0, tapAt: T + 120 * S, dbState: 'RUNNING' }],
    tasks: [{ id: 't1', state: 'succeeded', failureReason: null }],
    tasksSubmitted: 1,
    tasksReportedDone: new Set(['t1']),
    operations: [
      { kind: 'suspend', vmId: 'vm-a', status: 'succeeded', createdAt: T + 59 * S, finishedAt: T + 60 * S },
      { kind: 'restore', vmId: 'vm-a', status: 'succeeded', createdAt: T + 125 * S, finishedAt: T + 130 * S },
      { kind: 'delete-state', vmId: 'vm-a', status: 'succeeded', createdAt: T + 131 * S, finishedAt: T + 131 * S },
    ],
    audit: [
      { entityId: 'vm-a', at: T + 60 * S, afterState: 'SUSPENDED' },
      { entityId: 'vm-a', at: T + 130 * S, afterState: 'RUNNING' },
    ],
    savedStateFiles: new Set(),
    liveOrSavedDomains: new Set(['desk-a']),
    faultsEndAt: T + 110 * S,
    sloMs: 60 * S,
  };
}

describe('the chaos checker', () => {
  it('finds nothing wrong with a good night', () => {
    expect(check(goodNight())).toEqual([]);
  });

  it('catches a desktop that ran on two PCs at once, even if only in the middle of the night', () => {
    const e = goodNight();
    e.intervals = [...e.intervals, { domain: 'desk-a', pc: 1, from: T + 30 * S, until: T + 40 * S }];
    expect(check(e)).toEqual([expect.objectContaining({ invariant: 'one-place', message: expect.stringContaining('desk-a ran on PC 0 and PC 1') })]);
  });

  it('catches a batch task that ran twice at once', () => {
    const e = goodNight();
    e.intervals = [...e.intervals, { domain: 'dp-task-t1', pc: 3, from: T + 90 * S, until: T + 95 * S }];
    expect(check(e).map((v) => v.invariant)).toEqual(['batch']);
  });

  it('catches saved state deleted before a restore was confirmed', () => {
    const e = goodNight();
    e.operations = e.operations.map((o) => (o.kind === 'delete-state' ? { ...o, createdAt: T + 126 * S } : o));
    expect(check(e)).toEqual([expect.objectContaining({ invariant: 'saved-state' })]);
  });

  it('catches a desktop that is neither running nor saved anywhere', () => {
    const e = goodNight();
    e.liveOrSavedDomains = new Set();
    e.intervals = e.intervals.map((i) => (i.until === null ? { ...i, until: T + 140 * S } : i));
    const found = check(e).map((v) => v.invariant);
    expect(found).toContain('saved-state');
    expect(found).toContain('tap-slo');
  });

  it('catches lost, silently failed, cancelled or unfinished-but-succeeded tasks', () => {
    const e = goodNight();
    e.tasksSubmitted = 4;
    e.tasks = [
      { id: 't1', state: 'succeeded', failureReason: null },
      { id: 't2', state: 'failed', failureReason: null },
      { id: 't3', state: 'cancelled', failureReason: null },
    ];
    e.tasksReportedDone = new Set();
    const messages = check(e).map((v) => v.message);
    expect(messages).toEqual(
      expect.arrayContaining([
        expect.stringContaining('4 tasks submitted but 3'),
        expect.stringContaining('t2 failed without a reason'),
        expect.stringContaining('t3 ended cancelled'),
        expect.stringContaining('t1 is succeeded but its guest never finished'),
      ]),
    );
  });

  it('accepts a failed task with a reason and a task still queued', () => {
    const e = goodNight();
    e.tasksSubmitted = 3;
    e.tasks = [...e.tasks, { id: 't2', state: 'failed', failureReason: 'exit 3' }, { id: 't3', state: 'queued', failureReason: null }];
    expect(check(e)).toEqual([]);
  });

  it('holds a tap to the SLO counted from the end of the faults', () => {
    const e = goodNight();
    e.intervals = e.intervals.map((i) => (i.until === null ? { ...i, from: T + 185 * S } : i));
    expect(check(e)).toEqual([expect.objectContaining({ invariant: 'tap-slo', message: expect.stringContaining('started there only at') })]);
    e.faultsEndAt = T + 130 * S;
    expect(check(e)).toEqual([]);
  });

  it('catches a desktop state the audit trail does not end with', () => {
    const e = goodNight();
    e.audit = e.audit.slice(0, 1);
    expect(check(e)).toEqual([expect.objectContaining({ invariant: 'audit', message: expect.stringContaining('last state for it is SUSPENDED') })]);
  });
});
