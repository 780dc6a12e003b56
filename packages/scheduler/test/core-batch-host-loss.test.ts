// Batch work on a PC that goes silent (invariant 3: no task lost or run twice at once). The PC
// may be cut off but alive, so its tasks are held there until it is reconciled (the agent says
// what still runs) or an admin fences it; only then may a task start again elsewhere.
import { describe, expect, it } from 'vitest';
import { applyPlan, plan, type Snapshot } from '../src/core/index.js';
import { DEFAULT_SETTINGS } from '../src/core/settings.js';
import { answer, commands, MONDAY_2AM, step, World } from './core-fixtures.js';

const LATER = MONDAY_2AM + 60_000;

/** h1 runs two tasks (one with a shared checkpoint); h2 is free and could take them. */
function office(): World {
  return new World()
    .pool('p1', { batchWindow: 'always' })
    .host('h1')
    .host('h2')
    .job('j', { checkpointable: true })
    .task('with-cp', 'j', { state: 'RUNNING', hostId: 'h1', generation: 2, checkpoint: { kind: 'shared' } })
    .task('no-cp', 'j', { state: 'RUNNING', hostId: 'h1', generation: 2 });
}

function lose(s: Snapshot): Snapshot {
  return step(s, { id: 'hb', type: 'heartbeatLost', hostId: 'h1' }, MONDAY_2AM).next;
}

function backAndReconcileOp(s: Snapshot): { next: Snapshot; expectTasks: string[] } {
  const { plan: p, next } = step(s, { id: 'back', type: 'hostBack', hostId: 'h1' }, LATER);
  const [reconcile] = commands(p, 'reconcileHost');
  if (!reconcile) throw new Error('hostBack sent no reconcileHost');
  return { next, expectTasks: reconcile.expect.tasks.map((t) => t.taskId) };
}

describe('batch on a lost host', () => {
  it('holds its tasks where they are: same state, host and generation; placement does not start them elsewhere', () => {
    const { plan: p, next } = step(office().s, { id: 'hb', type: 'heartbeatLost', hostId: 'h1' }, MONDAY_2AM);
    expect(next.tasks['with-cp']).toMatchObject({ state: 'RUNNING', hostId: 'h1', generation: 2, restarts: 0 });
    expect(next.tasks['no-cp']).toMatchObject({ state: 'RUNNING', hostId: 'h1', generation: 2, restarts: 0 });
    expect(p.reasons.filter((r) => r.code === 'taskHeldOnLostHost').map((r) => r.subject?.id).sort()).toEqual(['no-cp', 'with-cp']);
    const round = step(next, { id: 'tick', type: 'tick', timer: 'placement' }, LATER);
    expect(commands(round.plan, 'placeTask')).toEqual([]);
    expect(commands(round.plan, 'resumeTask')).toEqual([]);
  });

  it('cancels a task that was being stopped to be cancelled (it is not to run anywhere again)', () => {
    const w = office().task('cancelling', 'j', { state: 'STOPPING', hostId: 'h1', generation: 4, afterStop: 'cancel' });
    const next = lose(w.s);
    expect(next.tasks.cancelling).toMatchObject({ state: 'CANCELLED', hostId: null, generation: 5 });
  });

  it('on return, the reconcile keeps held running tasks and stops a yield the loss cut off', () => {
    const w = office().task('yielding', 'j', { state: 'CHECKPOINTING', hostId: 'h1', generation: 3 });
    const { expectTasks } = backAndReconcileOp(lose(w.s));
    expect(expectTasks).toEqual(['no-cp', 'with-cp']);
  });

  it('a task the agent found running keeps running there, and its own end report still counts', () => {
    const { next: waiting } = backAndReconcileOp(lose(office().s));
    const { next } = answer(waiting, 'reconcileHost', 'h1', 'succeeded', LATER + 1000, { foundRunningVmIds: [], foundRunningTaskIds: ['no-cp', 'with-cp'] });
    expect(next.hosts.h1).toMatchObject({ online: true, needsReconcile: false });
    expect(next.tasks['no-cp']).toMatchObject({ state: 'RUNNING', hostId: 'h1', generation: 2, restarts: 0 });
    const finished = step(next, { id: 'fin', type: 'taskFinished', taskId: 'no-cp', generation: 2, outcome: 'succeeded' }, LATER + 2000).next;
    expect(finished.tasks['no-cp']).toMatchObject({ state: 'SUCCEEDED' });
  });

  it('a task not found running is requeued only then: from its checkpoint, or from zero counted once', () => {
    const { next: waiting } = backAndReconcileOp(lose(office().s));
    expect(waiting.tasks['no-cp']).toMatchObject({ state: 'RUNNING', hostId: 'h1' });
    const { next } = answer(waiting, 'reconcileHost', 'h1', 'succeeded', LATER + 1000, { foundRunningVmIds: [], foundRunningTaskIds: [] });
    expect(next.tasks['with-cp']).toMatchObject({ state: 'CHECKPOINTED', hostId: null, generation: 3, restarts: 0 });
    expect(next.tasks['no-cp']).toMatchObject({ state: 'QUEUED', hostId: null, generation: 3, restarts: 1 });
  });

  it('a yield cut off by the loss is requeued once the reconcile (which stopped its VM) succeeds', () => {
    const w = office().task('yielding', 'j', { state: 'CHECKPOINTING', hostId: 'h1', generation: 3 });
    const { next: waiting } = backAndReconcileOp(lose(w.s));
    const { next } = answer(waiting, 'reconcileHost', 'h1', 'succeeded', LATER + 1000, { foundRunningVmIds: [], foundRunningTaskIds: ['no-cp', 'with-cp'] });
    expect(next.tasks.yielding).toMatchObject({ state: 'QUEUED', hostId: null, generation: 4, restarts: 1 });
    expect(next.tasks['no-cp']).toMatchObject({ state: 'RUNNING', hostId: 'h1' });
  });

  it('a reconcile answer that does not say which tasks run keeps them held rather than guess', () => {
    const { next: waiting } = backAndReconcileOp(lose(office().s));
    const { plan: p, next } = answer(waiting, 'reconcileHost', 'h1', 'succeeded', LATER + 1000, { foundRunningVmIds: [] });
    expect(next.tasks['no-cp']).toMatchObject({ state: 'RUNNING', hostId: 'h1', generation: 2 });
    expect(p.reasons.map((r) => r.code)).toContain('reconcileWithoutTasks');
  });

  it('a failed reconcile releases nothing: the host stays fenced and its tasks held', () => {
    const { next: waiting } = backAndReconcileOp(lose(office().s));
    const { next } = answer(waiting, 'reconcileHost', 'h1', 'failed', LATER + 1000);
    expect(next.hosts.h1?.needsReconcile).toBe(true);
    expect(next.tasks['no-cp']).toMatchObject({ state: 'RUNNING', hostId: 'h1', generation: 2 });
  });

  it('an admin fence (the PC is confirmed off) requeues its tasks at once, and placement may then use h2', () => {
    const fenced = step(lose(office().s), { id: 'fence', type: 'hostFenced', hostId: 'h1' }, LATER).next;
    expect(fenced.tasks['with-cp']).toMatchObject({ state: 'CHECKPOINTED', hostId: null, generation: 3 });
    expect(fenced.tasks['no-cp']).toMatchObject({ state: 'QUEUED', hostId: null, generation: 3, restarts: 1 });
    const round = step(fenced, { id: 'tick', type: 'tick', timer: 'placement' }, LATER + 1000);
    const started = [...commands(round.plan, 'placeTask'), ...commands(round.plan, 'resumeTask')];
    expect(started.map((c) => c.hostId)).toEqual(['h2', 'h2']);
  });

  it('the reconcile of a live host (other end of a lost migration) leaves its tasks and their commands alone', () => {
    const w = new World()
      .pool('p1', { batchWindow: 'always' })
      .host('h1')
      .host('h2')
      .desktop('vm-a', 'alice', { state: 'MIGRATING', hostId: 'h1', sourceHostId: 'h2', generation: 5 })
      .job('j')
      .task('on-h2', 'j', { state: 'CHECKPOINTING', hostId: 'h2', generation: 3 });
    w.s.operations['op-cp'] = { id: 'op-cp', type: 'checkpointBatch', subject: { kind: 'task', id: 'on-h2' }, hostId: 'h2', generation: 3, startedAt: 0 };
    const { plan: p, next: waiting } = step(w.s, { id: 'hb', type: 'heartbeatLost', hostId: 'h1' }, MONDAY_2AM);
    expect(commands(p, 'reconcileHost').map((c) => c.hostId)).toEqual(['h2']);
    const { next } = answer(waiting, 'reconcileHost', 'h2', 'succeeded', LATER, { foundRunningVmIds: [], foundRunningTaskIds: [] });
    expect(next.tasks['on-h2']).toMatchObject({ state: 'CHECKPOINTING', hostId: 'h2', generation: 3 });
    expect(next.operations['op-cp']).toBeDefined();
  });

  it('the test-only broken build (no fence wait) requeues at once: what the chaos run must catch', () => {
    const s = office().s;
    const p = plan(s, { id: 'hb', type: 'heartbeatLost', hostId: 'h1' }, { ...DEFAULT_SETTINGS, testOnlyTreatLostHostsAsFenced: true }, MONDAY_2AM);
    const next = applyPlan(s, p);
    expect(next.tasks['no-cp']).toMatchObject({ state: 'QUEUED', hostId: null });
    expect(next.tasks['with-cp']).toMatchObject({ state: 'CHECKPOINTED', hostId: null });
  });
});

describe('a person at a PC that was cut off', () => {
  it('gets their desktop once the PC is reconciled, from the presence it reported while lost', () => {
    const w = new World()
      .pool('p1', { storageMode: 'shared' })
      .person('alice', 'h1', { state: 'SUSPENDED', hostId: null, savedState: { kind: 'shared' }, generation: 3 }, { presence: 'idle', presenceSince: 0 });
    let s = step(w.s, { id: 'hb', type: 'heartbeatLost', hostId: 'h1' }, MONDAY_2AM).next;
    // The tap arrives while the PC is still fenced: nothing may start there yet.
    const tap = step(s, { id: 'tap', type: 'presence', hostId: 'h1', presence: 'present' }, LATER);
    expect(commands(tap.plan, 'restoreDesktop')).toEqual([]);
    s = tap.next;
    s = backAndReconcileOp(s).next;
    const { plan: p, next } = answer(s, 'reconcileHost', 'h1', 'succeeded', LATER + 2000, { foundRunningVmIds: [], foundRunningTaskIds: [] });
    expect(commands(p, 'restoreDesktop').map((c) => [c.vmId, c.hostId])).toEqual([['vm-alice', 'h1']]);
    expect(next.vms['vm-alice']).toMatchObject({ state: 'RESTORING', hostId: 'h1' });
  });
});
