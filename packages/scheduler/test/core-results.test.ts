import { describe, expect, it } from 'vitest';
import { checkInvariants, plan } from '../src/core/index.js';
import { answer, commands, MONDAY_10AM, MONDAY_2AM, res, step, World } from './core-fixtures.js';

describe('answers from agents', () => {
  it('a failed live migration leaves the desktop running where it was', () => {
    const w = new World().pool('p1').person('alice', 'h1', { state: 'RUNNING' }).host('h2');
    let { next } = step(w.s, { id: 's', type: 'signIn', userId: 'alice', hostId: 'h2' }, MONDAY_10AM);
    ({ next } = answer(next, 'migrateDesktop', 'vm-alice', 'failed', MONDAY_10AM + 1000));
    expect(next.vms['vm-alice']).toMatchObject({ state: 'RUNNING', hostId: 'h1', sourceHostId: null });
  });

  it('a failed saved-state move leaves the desktop suspended where its state is', () => {
    const w = new World().pool('p1').person('alice', 'h1', { state: 'SUSPENDED', hostId: null, savedState: { kind: 'local', hostId: 'h1' } }).host('h2');
    let { next } = step(w.s, { id: 's', type: 'signIn', userId: 'alice', hostId: 'h2' }, MONDAY_10AM);
    ({ next } = answer(next, 'moveSavedState', 'vm-alice', 'failed', MONDAY_10AM + 1000));
    expect(next.vms['vm-alice']).toMatchObject({ state: 'SUSPENDED', hostId: null, savedState: { kind: 'local', hostId: 'h1' } });
  });

  it('a failed cold boot leaves the desktop STOPPED', () => {
    const w = new World().pool('p1').person('alice', 'h1', { state: 'STOPPED', hostId: null });
    let { plan: p, next } = step(w.s, { id: 'tap', type: 'presence', hostId: 'h1', presence: 'present' }, MONDAY_10AM);
    expect(commands(p, 'restoreDesktop')).toMatchObject([{ from: { kind: 'coldBoot' } }]);
    ({ plan: p, next } = answer(next, 'restoreDesktop', 'vm-alice', 'failed', MONDAY_10AM + 1000));
    expect(next.vms['vm-alice']).toMatchObject({ state: 'STOPPED', hostId: null });
    expect(commands(p, 'deleteSavedState')).toHaveLength(0);
  });

  it('a failed suspend keeps the desktop running', () => {
    const w = new World().pool('p1').person('alice', 'h1', { state: 'RUNNING' }, { presence: 'idle', presenceSince: 0 });
    let { next } = step(w.s, { id: 'idle', type: 'tick', timer: 'idleCheck' }, MONDAY_2AM);
    ({ next } = answer(next, 'suspendDesktop', 'vm-alice', 'failed', MONDAY_2AM + 1000));
    expect(next.vms['vm-alice']).toMatchObject({ state: 'RUNNING', hostId: 'h1' });
  });

  it('a checkpoint records where it lies (local storage) and the task resumes from it', () => {
    const w = new World()
      .pool('p1', { storageMode: 'local' })
      .person('alice', 'h1', { state: 'SUSPENDED', hostId: null, savedState: { kind: 'local', hostId: 'h1' }, size: res(8, 16384) })
      .host('h2')
      .job('j', { checkpointable: true })
      .task('t', 'j', { state: 'RUNNING', hostId: 'h1', generation: 1 });
    let { next } = step(w.s, { id: 'tap', type: 'presence', hostId: 'h1', presence: 'present' }, MONDAY_2AM);
    ({ next } = answer(next, 'checkpointBatch', 't', 'succeeded', MONDAY_2AM + 1000));
    expect(next.tasks.t).toMatchObject({ state: 'CHECKPOINTED', hostId: null, checkpoint: { kind: 'local', hostId: 'h1' } });
    // h1 is taken by alice: the task resumes on h2, so its checkpoint goes there first.
    const placed = step(next, { id: 'pl', type: 'tick', timer: 'placement' }, MONDAY_2AM + 2000);
    expect(commands(placed.plan, 'resumeTask')).toEqual([]);
    expect(commands(placed.plan, 'moveCheckpoint')).toMatchObject([{ taskId: 't', hostId: 'h1', fromHostId: 'h1', toHostId: 'h2' }]);
    expect(placed.next.tasks.t).toMatchObject({ state: 'RUNNING', hostId: 'h2', checkpoint: { kind: 'local', hostId: 'h1' } });
    expect(checkInvariants(placed.next)).toEqual([]);
    const moved = answer(placed.next, 'moveCheckpoint', 't', 'succeeded', MONDAY_2AM + 3000);
    expect(commands(moved.plan, 'resumeTask')).toMatchObject([{ taskId: 't', hostId: 'h2', generation: placed.next.tasks.t?.generation, from: { kind: 'local', hostId: 'h2' } }]);
    expect(moved.next.tasks.t).toMatchObject({ state: 'RUNNING', hostId: 'h2', checkpoint: { kind: 'local', hostId: 'h2' } });
  });

  it('a checkpoint that could not be moved stays where it was, and the task waits CHECKPOINTED for the next round', () => {
    const w2 = new World()
      .pool('p1', { storageMode: 'local' })
      .person('alice', 'h1', { state: 'RUNNING', size: res(8, 16384) }, { presence: 'present', presenceSince: 0 })
      .host('h2')
      .job('j', { checkpointable: true })
      .task('t', 'j', { state: 'CHECKPOINTED', checkpoint: { kind: 'local', hostId: 'h1' } });
    const p2 = step(w2.s, { id: 'pl2', type: 'tick', timer: 'placement' }, MONDAY_2AM);
    expect(commands(p2.plan, 'moveCheckpoint')).toMatchObject([{ taskId: 't', hostId: 'h1', toHostId: 'h2' }]);
    const failed = answer(p2.next, 'moveCheckpoint', 't', 'failed', MONDAY_2AM + 1000);
    expect(commands(failed.plan, 'resumeTask')).toEqual([]);
    expect(failed.plan.reasons.map((r) => r.code)).toContain('checkpointMoveFailed');
    expect(failed.next.tasks.t).toMatchObject({ state: 'CHECKPOINTED', hostId: null, checkpoint: { kind: 'local', hostId: 'h1' } });
    expect(checkInvariants(failed.next)).toEqual([]);
  });

  it('a checkpoint that fails falls back to the previous checkpoint, or to a restart from zero counted once', () => {
    const w = new World()
      .pool('p1')
      .person('alice', 'h1', { state: 'SUSPENDED', hostId: null, savedState: { kind: 'local', hostId: 'h1' }, size: res(8, 16384) })
      .job('j', { checkpointable: true })
      .task('old-cp', 'j', { state: 'RUNNING', hostId: 'h1', checkpoint: { kind: 'shared' }, resources: res(1, 1024, 1) })
      .task('no-cp', 'j', { state: 'RUNNING', hostId: 'h1', resources: res(1, 1024, 1) });
    let { next } = step(w.s, { id: 'tap', type: 'presence', hostId: 'h1', presence: 'present' }, MONDAY_2AM);
    ({ next } = answer(next, 'checkpointBatch', 'old-cp', 'failed', MONDAY_2AM + 1000));
    ({ next } = answer(next, 'checkpointBatch', 'no-cp', 'failed', MONDAY_2AM + 1000));
    expect(next.tasks['old-cp']).toMatchObject({ state: 'CHECKPOINTED', restarts: 0, checkpoint: { kind: 'shared' } });
    expect(next.tasks['no-cp']).toMatchObject({ state: 'QUEUED', restarts: 1 });
  });

  it('a job cancelled while its task checkpoints ends CANCELLED when the checkpoint answers', () => {
    const w = new World()
      .pool('p1')
      .person('alice', 'h1', { state: 'SUSPENDED', hostId: null, savedState: { kind: 'local', hostId: 'h1' }, size: res(8, 16384) })
      .job('j', { checkpointable: true })
      .task('t', 'j', { state: 'RUNNING', hostId: 'h1' });
    let { next } = step(w.s, { id: 'tap', type: 'presence', hostId: 'h1', presence: 'present' }, MONDAY_2AM);
    ({ next } = step(next, { id: 'c', type: 'jobCancelled', jobId: 'j' }, MONDAY_2AM + 500));
    expect(next.tasks.t?.state).toBe('CHECKPOINTING');
    ({ next } = answer(next, 'checkpointBatch', 't', 'succeeded', MONDAY_2AM + 1000));
    expect(next.tasks.t).toMatchObject({ state: 'CANCELLED', hostId: null });
  });

  it('a task end reported for an older run is ignored', () => {
    const w = new World().pool('p1').host('h').job('j').task('t', 'j', { state: 'RUNNING', hostId: 'h', generation: 4 });
    const p = plan(w.s, { id: 'f', type: 'taskFinished', taskId: 't', generation: 3, outcome: 'succeeded' }, undefined, MONDAY_2AM);
    expect(p.actions).toHaveLength(0);
    expect(p.reasons[0]?.code).toBe('staleResult');
  });

  it('a guest that ends by itself while told to checkpoint counts as done once; the checkpoint answer changes nothing', () => {
    const w = new World()
      .pool('p1')
      .person('alice', 'h1', { state: 'SUSPENDED', hostId: null, savedState: { kind: 'local', hostId: 'h1' }, size: res(8, 16384) })
      .job('j', { checkpointable: true })
      .task('t', 'j', { state: 'RUNNING', hostId: 'h1', generation: 2 });
    let { next } = step(w.s, { id: 'tap', type: 'presence', hostId: 'h1', presence: 'present' }, MONDAY_2AM);
    expect(next.tasks.t).toMatchObject({ state: 'CHECKPOINTING', generation: 3 });
    const checkpoint = Object.values(next.operations).find((o) => o.type === 'checkpointBatch' && o.subject.id === 't');
    expect(checkpoint).toBeDefined();
    ({ next } = step(next, { id: 'f', type: 'taskFinished', taskId: 't', generation: 2, outcome: 'succeeded' }, MONDAY_2AM + 500));
    expect(next.tasks.t).toMatchObject({ state: 'SUCCEEDED', hostId: null });
    expect(Object.values(next.operations).filter((o) => o.subject.id === 't')).toHaveLength(0);
    const late = plan(next, { id: 'r', type: 'operationResult', operationId: checkpoint?.id ?? '', outcome: 'failed', generation: 3 }, undefined, MONDAY_2AM + 1000);
    expect(late.actions.filter((a) => a.type === 'recordTransition' && a.id === 't')).toHaveLength(0);
    // an end reported for the run before that one is still stale
    const older = plan(w.s, { id: 'f0', type: 'taskFinished', taskId: 't', generation: 0, outcome: 'succeeded' }, undefined, MONDAY_2AM);
    expect(older.reasons[0]?.code).toBe('staleResult');
  });

  it('a non-checkpointable guest that fails by itself while being stopped for a cancelled job ends CANCELLED', () => {
    const w = new World().pool('p1').host('h').job('j').task('t', 'j', { state: 'RUNNING', hostId: 'h', generation: 1 });
    let { next } = step(w.s, { id: 'c', type: 'jobCancelled', jobId: 'j' }, MONDAY_2AM);
    expect(next.tasks.t).toMatchObject({ state: 'STOPPING', generation: 2, afterStop: 'cancel' });
    ({ next } = step(next, { id: 'f', type: 'taskFinished', taskId: 't', generation: 1, outcome: 'failed' }, MONDAY_2AM + 100));
    expect(next.tasks.t).toMatchObject({ state: 'CANCELLED', hostId: null, afterStop: null });
  });

  it('a failed placement is retried from the queue, then FAILED past the retry limit', () => {
    const w = new World().pool('p1').host('h').job('j', { maxRetries: 0 }).task('t', 'j');
    let { next } = step(w.s, { id: 'pl', type: 'tick', timer: 'placement' }, MONDAY_2AM);
    ({ next } = answer(next, 'placeTask', 't', 'failed', MONDAY_2AM + 1000));
    expect(next.tasks.t).toMatchObject({ state: 'FAILED', attempts: 1, hostId: null });
  });

  it('a reconcile that finds nothing leaves the lost desktop STOPPED, and the PC usable again', () => {
    const w = new World().pool('p1').person('alice', 'h1', { state: 'LOST', generation: 5 }, { online: false, needsReconcile: true });
    let { next } = step(w.s, { id: 'back', type: 'hostBack', hostId: 'h1' }, MONDAY_2AM);
    ({ next } = answer(next, 'reconcileHost', 'h1', 'succeeded', MONDAY_2AM + 1000, { foundRunningVmIds: [] }));
    expect(next.vms['vm-alice']).toMatchObject({ state: 'STOPPED', hostId: null });
    expect(next.hosts.h1).toMatchObject({ online: true, needsReconcile: false });
  });

  it('a person waiting for a desktop whose saved state sat on an offline PC gets it once that PC is reconciled', () => {
    const w = new World()
      .pool('p1', { storageMode: 'local' })
      .person('alice', 'h1', { state: 'SUSPENDED', hostId: null, savedState: { kind: 'local', hostId: 'h1' } }, { online: false, needsReconcile: true })
      .host('h2', { presence: 'present' });
    let { plan: p, next } = step(w.s, { id: 's', type: 'signIn', userId: 'alice', hostId: 'h2' }, MONDAY_10AM);
    expect(p.reasons.map((r) => r.code)).toContain('savedStateUnreachable');
    ({ next } = step(next, { id: 'back', type: 'hostBack', hostId: 'h1' }, MONDAY_10AM + 1000));
    ({ plan: p, next } = answer(next, 'reconcileHost', 'h1', 'succeeded', MONDAY_10AM + 2000, { foundRunningVmIds: [] }));
    expect(commands(p, 'moveSavedState')).toMatchObject([{ vmId: 'vm-alice', fromHostId: 'h1', toHostId: 'h2' }]);
  });
});
