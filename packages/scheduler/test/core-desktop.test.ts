import { describe, expect, it } from 'vitest';
import { applyPlan, plan } from '../src/core/index.js';
import { answer, commands, MINUTE, MONDAY_10AM, MONDAY_2AM, res, step, World } from './core-fixtures.js';

const idleSinceLongAgo = { presence: 'idle' as const, presenceSince: MONDAY_2AM - 60 * MINUTE };

describe('idle suspend', () => {
  it('suspends a desktop idle past the threshold inside the night window, bumping its generation', () => {
    const w = new World().pool('p1').person('alice', 'h1', { state: 'RUNNING', generation: 4 }, idleSinceLongAgo);
    const { plan: p, next } = step(w.s, { id: 'e1', type: 'tick', timer: 'idleCheck' }, MONDAY_2AM);
    const [suspend] = commands(p, 'suspendDesktop');
    expect(suspend).toMatchObject({ vmId: 'vm-alice', hostId: 'h1', generation: 5, saveTo: { kind: 'local', hostId: 'h1' } });
    expect(suspend?.cause).toEqual({ eventId: 'e1', event: 'tick', rule: 'desktop.idleSuspend' });
    expect(next.vms['vm-alice']).toMatchObject({ state: 'SUSPENDING', generation: 5 });
    expect(next.operations[suspend!.key]).toMatchObject({ type: 'suspendDesktop', generation: 5 });
  });

  it('leaves a desktop idle for less than the threshold (default 15 minutes) alone', () => {
    const w = new World().pool('p1').person('alice', 'h1', {}, { presence: 'idle', presenceSince: MONDAY_2AM - 14 * MINUTE });
    expect(commands(plan(w.s, { id: 'e1', type: 'tick', timer: 'idleCheck' }, undefined, MONDAY_2AM), 'suspendDesktop')).toHaveLength(0);
  });

  it('does not suspend in the daytime unless the pool says any time', () => {
    const day = { presence: 'idle' as const, presenceSince: MONDAY_10AM - 60 * MINUTE };
    const night = new World().pool('p1').person('alice', 'h1', {}, day);
    expect(commands(plan(night.s, { id: 'e1', type: 'tick', timer: 'idleCheck' }, undefined, MONDAY_10AM), 'suspendDesktop')).toHaveLength(0);
    const anyTime = new World().pool('p1', { suspendIdleAnyTime: true }).person('alice', 'h1', {}, day);
    expect(commands(plan(anyTime.s, { id: 'e1', type: 'tick', timer: 'idleCheck' }, undefined, MONDAY_10AM), 'suspendDesktop')).toHaveLength(1);
  });

  it('never suspends a pinned desktop and says why', () => {
    const w = new World().pool('p1').person('alice', 'h1', { pinned: true }, idleSinceLongAgo);
    const p = plan(w.s, { id: 'e1', type: 'tick', timer: 'nightStart' }, undefined, MONDAY_2AM);
    expect(commands(p, 'suspendDesktop')).toHaveLength(0);
    expect(p.reasons.map((r) => r.code)).toContain('pinned');
  });

  it('pin and unpin are recorded as transitions with their rule', () => {
    const w = new World().pool('p1').person('alice', 'h1');
    const { plan: p, next } = step(w.s, { id: 'e1', type: 'pin', vmId: 'vm-alice', pinned: true }, MONDAY_2AM);
    expect(next.vms['vm-alice']?.pinned).toBe(true);
    expect(p.actions[0]).toMatchObject({ type: 'recordTransition', entity: 'vms', cause: { rule: 'desktop.pin' } });
  });
});

describe('a tap at the home PC: presence always wins', () => {
  function nightWithBatch() {
    return new World()
      .pool('p1')
      .person('alice', 'h1', { state: 'SUSPENDED', hostId: null, savedState: { kind: 'local', hostId: 'h1' }, generation: 7 }, { presence: 'idle', presenceSince: 0, resources: res(8, 16384, 200) })
      .job('ckpt', { checkpointable: true, priority: 10 })
      .job('nockpt', { checkpointable: false, priority: 5 })
      .task('t-ckpt', 'ckpt', { state: 'RUNNING', hostId: 'h1', generation: 3, resources: res(4, 8192, 1) })
      .task('t-stop', 'nockpt', { state: 'RUNNING', hostId: 'h1', generation: 2, resources: res(4, 8192, 1) });
  }

  it('yields batch (checkpoint or stop) and starts the restore in the same plan, ordered after the yields', () => {
    const { plan: p, next } = step(nightWithBatch().s, { id: 'tap', type: 'presence', hostId: 'h1', presence: 'present' }, MONDAY_2AM);
    const stops = commands(p, 'stopBatch');
    const ckpts = commands(p, 'checkpointBatch');
    const [restore] = commands(p, 'restoreDesktop');
    // The lower-priority, non-checkpointable task goes first; both must go (desktop needs room, and the share is 25%).
    expect(stops.map((c) => c.taskId)).toEqual(['t-stop']);
    expect(ckpts.map((c) => c.taskId)).toEqual(['t-ckpt']);
    expect(restore).toMatchObject({ vmId: 'vm-alice', hostId: 'h1', generation: 8, from: { kind: 'local', hostId: 'h1' } });
    expect(restore?.after.sort()).toEqual([stops[0]!.key, ckpts[0]!.key].sort());
    expect(next.vms['vm-alice']?.state).toBe('RESTORING');
    expect(next.tasks['t-stop']).toMatchObject({ state: 'STOPPING', generation: 3, afterStop: 'requeue' });
    expect(next.tasks['t-ckpt']).toMatchObject({ state: 'CHECKPOINTING', generation: 4 });
  });

  it('a stopped non-checkpointable task is requeued to start over, counted once', () => {
    let { next } = step(nightWithBatch().s, { id: 'tap', type: 'presence', hostId: 'h1', presence: 'present' }, MONDAY_2AM);
    ({ next } = answer(next, 'stopBatch', 't-stop', 'succeeded', MONDAY_2AM + 1000));
    expect(next.tasks['t-stop']).toMatchObject({ state: 'QUEUED', hostId: null, restarts: 1, checkpoint: null });
    // A duplicate delivery of the same answer changes nothing.
    const dup = plan(next, { id: 'dup', type: 'operationResult', operationId: 'tap/stopBatch/t-stop/g3', outcome: 'succeeded', generation: 3 }, undefined, MONDAY_2AM + 2000);
    expect(dup.actions).toHaveLength(0);
    expect(dup.reasons[0]?.code).toBe('unknownOperation');
  });

  it('keeps batch within the pool share next to a present owner whose desktop already runs', () => {
    const w = new World()
      .pool('p1', { maxBatchShareWhileOwnerPresent: 0.5 })
      .person('alice', 'h1', { state: 'RUNNING' }, { resources: res(8, 16384, 200) })
      .job('j')
      .task('a', 'j', { state: 'RUNNING', hostId: 'h1', resources: res(2, 2048, 1) })
      .task('b', 'j', { state: 'RUNNING', hostId: 'h1', resources: res(2, 2048, 1) })
      .task('c', 'j', { state: 'RUNNING', hostId: 'h1', resources: res(2, 2048, 1) });
    const p = plan(w.s, { id: 'tap', type: 'presence', hostId: 'h1', presence: 'present' }, undefined, MONDAY_2AM);
    expect(commands(p, 'checkpointBatch')).toHaveLength(1);
    expect(commands(p, 'restoreDesktop')).toHaveLength(0);
  });

  it('a tap while the desktop is still suspending restores it the moment the suspend is confirmed', () => {
    const w = new World().pool('p1').person('alice', 'h1', { state: 'RUNNING' }, idleSinceLongAgo);
    let { next } = step(w.s, { id: 'idle', type: 'tick', timer: 'idleCheck' }, MONDAY_2AM);
    let p;
    ({ plan: p, next } = step(next, { id: 'tap', type: 'presence', hostId: 'h1', presence: 'present' }, MONDAY_2AM + 1000));
    expect(commands(p, 'restoreDesktop')).toHaveLength(0);
    expect(next.vms['vm-alice']?.desiredHostId).toBe('h1');
    ({ plan: p, next } = answer(next, 'suspendDesktop', 'vm-alice', 'succeeded', MONDAY_2AM + 5000));
    expect(commands(p, 'restoreDesktop')).toMatchObject([{ vmId: 'vm-alice', hostId: 'h1', from: { kind: 'local', hostId: 'h1' } }]);
    expect(next.vms['vm-alice']).toMatchObject({ state: 'RESTORING', desiredHostId: null });
  });

  it('saved state is deleted only after the restore from it is confirmed', () => {
    const w = new World().pool('p1').person('alice', 'h1', { state: 'SUSPENDED', hostId: null, savedState: { kind: 'local', hostId: 'h1' } });
    let { plan: p, next } = step(w.s, { id: 'tap', type: 'presence', hostId: 'h1', presence: 'present' }, MONDAY_2AM);
    expect(commands(p, 'deleteSavedState')).toHaveLength(0);
    ({ plan: p, next } = answer(next, 'restoreDesktop', 'vm-alice', 'failed', MONDAY_2AM + 1000));
    expect(commands(p, 'deleteSavedState')).toHaveLength(0);
    expect(next.vms['vm-alice']).toMatchObject({ state: 'SUSPENDED', savedState: { kind: 'local', hostId: 'h1' } });
    ({ next } = step(next, { id: 'tap2', type: 'presence', hostId: 'h1', presence: 'present' }, MONDAY_2AM + 2000));
    ({ plan: p, next } = answer(next, 'restoreDesktop', 'vm-alice', 'succeeded', MONDAY_2AM + 3000));
    expect(commands(p, 'deleteSavedState')).toMatchObject([{ hostId: 'h1', location: { kind: 'local', hostId: 'h1' } }]);
    expect(next.vms['vm-alice']).toMatchObject({ state: 'RUNNING', hostId: 'h1', savedState: null });
  });
});

describe('hot-desking: the desktop follows its person to another PC of the pool', () => {
  it('live-migrates a running desktop', () => {
    const w = new World().pool('p1').person('alice', 'h1', { state: 'RUNNING', generation: 2 }).host('h2');
    const { plan: p, next } = step(w.s, { id: 's', type: 'signIn', userId: 'alice', hostId: 'h2' }, MONDAY_10AM);
    expect(commands(p, 'migrateDesktop')).toMatchObject([{ vmId: 'vm-alice', fromHostId: 'h1', hostId: 'h2', generation: 3 }]);
    expect(next.vms['vm-alice']).toMatchObject({ state: 'MIGRATING', sourceHostId: 'h1', hostId: 'h2' });
    const done = answer(next, 'migrateDesktop', 'vm-alice', 'succeeded', MONDAY_10AM + 5000).next;
    expect(done.vms['vm-alice']).toMatchObject({ state: 'RUNNING', hostId: 'h2', sourceHostId: null });
  });

  it('local storage: moves the saved state, then restores once the move is confirmed', () => {
    const w = new World().pool('p1', { storageMode: 'local' }).person('alice', 'h1', { state: 'SUSPENDED', hostId: null, savedState: { kind: 'local', hostId: 'h1' } }).host('h2');
    let { plan: p, next } = step(w.s, { id: 's', type: 'signIn', userId: 'alice', hostId: 'h2' }, MONDAY_10AM);
    expect(commands(p, 'moveSavedState')).toMatchObject([{ fromHostId: 'h1', toHostId: 'h2' }]);
    expect(commands(p, 'restoreDesktop')).toHaveLength(0);
    ({ plan: p, next } = answer(next, 'moveSavedState', 'vm-alice', 'succeeded', MONDAY_10AM + 3000));
    expect(commands(p, 'restoreDesktop')).toMatchObject([{ hostId: 'h2', from: { kind: 'local', hostId: 'h2' } }]);
    ({ plan: p, next } = answer(next, 'restoreDesktop', 'vm-alice', 'succeeded', MONDAY_10AM + 6000));
    expect(next.vms['vm-alice']).toMatchObject({ state: 'RUNNING', hostId: 'h2' });
  });

  it('shared storage: restores on the new PC straight from shared storage', () => {
    const w = new World().pool('p1', { storageMode: 'shared' }).person('alice', 'h1', { state: 'SUSPENDED', hostId: null, savedState: { kind: 'shared' } }).host('h2');
    const p = plan(w.s, { id: 's', type: 'signIn', userId: 'alice', hostId: 'h2' }, undefined, MONDAY_10AM);
    expect(commands(p, 'moveSavedState')).toHaveLength(0);
    expect(commands(p, 'restoreDesktop')).toMatchObject([{ hostId: 'h2', from: { kind: 'shared' } }]);
  });

  it('refuses (with a reason) when the other PC has no room even without batch', () => {
    const w = new World().pool('p1').person('alice', 'h1', { state: 'RUNNING', size: res(4, 8192) }).person('bob', 'h2', { state: 'RUNNING', size: res(6, 8192) }, { resources: res(8, 16384, 200) });
    const p = plan(w.s, { id: 's', type: 'signIn', userId: 'alice', hostId: 'h2' }, undefined, MONDAY_10AM);
    expect(commands(p, 'migrateDesktop')).toHaveLength(0);
    expect(p.reasons.map((r) => r.code)).toContain('noRoomForDesktop');
  });
});

describe('fencing: heartbeat loss, reconciliation', () => {
  it('marks a running desktop LOST under a new generation and ignores the old host’s late answers', () => {
    const w = new World().pool('p1').person('alice', 'h1', { state: 'RUNNING', generation: 3 }, idleSinceLongAgo);
    let { next } = step(w.s, { id: 'idle', type: 'tick', timer: 'idleCheck' }, MONDAY_2AM);
    const suspendOp = Object.values(next.operations)[0]!;
    const lost = step(next, { id: 'hb', type: 'heartbeatLost', hostId: 'h1' }, MONDAY_2AM + 1000);
    const p = lost.plan;
    next = lost.next;
    expect(p.actions.filter((a) => a.type === 'markLost')).toMatchObject([{ vmId: 'vm-alice', lastHostId: 'h1', generation: 5 }]);
    expect(next.vms['vm-alice']).toMatchObject({ state: 'LOST', generation: 5, hostId: 'h1' });
    expect(next.hosts.h1).toMatchObject({ online: false, needsReconcile: true });
    const late = plan(next, { id: 'late', type: 'operationResult', operationId: suspendOp.id, outcome: 'succeeded', generation: suspendOp.generation }, undefined, MONDAY_2AM + 2000);
    expect(late.actions.filter((a) => a.type !== 'recordTransition')).toHaveLength(0);
    expect(applyPlan(next, late).vms['vm-alice']?.state).toBe('LOST');
  });

  it('a host that comes back is reconciled before anything is placed on it; a found desktop is adopted', () => {
    const w = new World().pool('p1').person('alice', 'h1', { state: 'LOST', generation: 5 }, { online: false, needsReconcile: true }).job('j').task('t', 'j');
    const back = step(w.s, { id: 'back', type: 'hostBack', hostId: 'h1' }, MONDAY_2AM);
    const p = back.plan;
    let next = back.next;
    expect(commands(p, 'reconcileHost')).toMatchObject([{ hostId: 'h1', expect: { vms: [{ vmId: 'vm-alice', generation: 5 }], tasks: [] } }]);
    expect(commands(plan(next, { id: 'pl', type: 'tick', timer: 'placement' }, undefined, MONDAY_2AM), 'placeTask')).toHaveLength(0);
    ({ next } = answer(next, 'reconcileHost', 'h1', 'succeeded', MONDAY_2AM + 1000, { foundRunningVmIds: ['vm-alice'] }));
    expect(next.vms['vm-alice']).toMatchObject({ state: 'RUNNING', hostId: 'h1' });
    expect(next.hosts.h1?.needsReconcile).toBe(false);
  });

  it('lost mid-migration: the surviving end is asked what it runs; a desktop found there is adopted', () => {
    const w = new World().pool('p1').person('alice', 'h1', { state: 'MIGRATING', sourceHostId: 'h1', hostId: 'h2', generation: 3 }).host('h2');
    const lost = step(w.s, { id: 'hb', type: 'heartbeatLost', hostId: 'h2' }, MONDAY_10AM);
    const p = lost.plan;
    let next = lost.next;
    expect(next.vms['vm-alice']).toMatchObject({ state: 'LOST', hostId: 'h2', sourceHostId: 'h1', generation: 4 });
    expect(commands(p, 'reconcileHost')).toMatchObject([{ hostId: 'h1', expect: { vms: [{ vmId: 'vm-alice', generation: 4 }] } }]);
    ({ next } = answer(next, 'reconcileHost', 'h1', 'succeeded', MONDAY_10AM + 1000, { foundRunningVmIds: ['vm-alice'] }));
    expect(next.vms['vm-alice']).toMatchObject({ state: 'RUNNING', hostId: 'h1', sourceHostId: null });
  });

  it('a fenced host’s lost desktop becomes STOPPED and may then cold-boot elsewhere (shared storage)', () => {
    const w = new World().pool('p1', { storageMode: 'shared' }).person('alice', 'h1', { state: 'LOST', generation: 5 }, { online: false, needsReconcile: true }).host('h2');
    const blocked = plan(w.s, { id: 's0', type: 'signIn', userId: 'alice', hostId: 'h2' }, undefined, MONDAY_10AM);
    expect(commands(blocked, 'restoreDesktop')).toHaveLength(0);
    const { next } = step(w.s, { id: 'f', type: 'hostFenced', hostId: 'h1' }, MONDAY_10AM);
    expect(next.vms['vm-alice']).toMatchObject({ state: 'STOPPED', hostId: null });
    const p = step(next, { id: 's', type: 'signIn', userId: 'alice', hostId: 'h2' }, MONDAY_10AM + 1000).plan;
    expect(commands(p, 'restoreDesktop')).toMatchObject([{ hostId: 'h2', from: { kind: 'coldBoot' }, generation: 6 }]);
  });
});

describe('determinism', () => {
  it('the same snapshot, event and time give the same actions and keys', () => {
    const w = new World().pool('p1').person('alice', 'h1', { state: 'SUSPENDED', hostId: null, savedState: { kind: 'local', hostId: 'h1' } }).job('j').task('t', 'j', { state: 'RUNNING', hostId: 'h1' });
    const e = { id: 'tap', type: 'presence', hostId: 'h1', presence: 'present' } as const;
    expect(plan(w.s, e, undefined, MONDAY_2AM)).toEqual(plan(w.s, e, undefined, MONDAY_2AM));
  });
});
