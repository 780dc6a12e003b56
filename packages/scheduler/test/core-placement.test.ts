import { describe, expect, it } from 'vitest';
import { checkInvariants, plan, type ConstraintRule, type Plan } from '../src/core/index.js';
import { commands, MONDAY_10AM, MONDAY_2AM, res, step, World } from './core-fixtures.js';

const placementTick = { id: 'place', type: 'tick', timer: 'placement' } as const;
const placedOn = (p: Plan) => Object.fromEntries([...commands(p, 'placeTask'), ...commands(p, 'resumeTask')].map((c) => [c.taskId, c.hostId]));

describe('feasibility filters', () => {
  it('skips offline, unreconciled, draining and sleeping PCs', () => {
    const w = new World()
      .pool('p1')
      .host('off', { online: false })
      .host('unrec', { needsReconcile: true })
      .host('drain', { draining: true })
      .host('sleep', { asleep: true })
      .host('ok')
      .job('j')
      .task('t1', 'j')
      .task('t2', 'j');
    expect(Object.values(placedOn(plan(w.s, placementTick, undefined, MONDAY_2AM)))).toEqual(['ok', 'ok']);
  });

  it('places nothing during office hours when the pool allows batch only outside them', () => {
    const w = new World().pool('p1', { batchWindow: 'outsideOfficeHours' }).host('h').job('j').task('t', 'j');
    const p = plan(w.s, placementTick, undefined, MONDAY_10AM);
    expect(commands(p, 'placeTask')).toHaveLength(0);
    expect(p.reasons.map((r) => r.code)).toContain('noFeasibleHost');
    const always = new World().pool('p1', { batchWindow: 'always' }).host('h').job('j').task('t', 'j');
    expect(commands(plan(always.s, placementTick, undefined, MONDAY_10AM), 'placeTask')).toHaveLength(1);
  });

  it('limits batch to the pool share on a PC whose owner is present', () => {
    const w = new World()
      .pool('p1', { batchWindow: 'always', maxBatchShareWhileOwnerPresent: 0.5 })
      .person('alice', 'h1', { state: 'RUNNING', size: res(2, 2048) }, { presence: 'present', resources: res(8, 16384, 100) })
      .job('j');
    for (let i = 0; i < 5; i++) w.task(`t${i}`, 'j', { resources: res(1, 1024, 1) });
    const { plan: p, next } = step(w.s, placementTick, MONDAY_10AM);
    expect(commands(p, 'placeTask')).toHaveLength(4);
    expect(checkInvariants(next)).toEqual([]);
  });

  it('honours labels and GPUs, and keeps GPU PCs for GPU work', () => {
    const w = new World()
      .pool('p1')
      .host('plain', { labels: { arch: 'x86' } })
      .host('gpu', { labels: { arch: 'x86' }, resources: res(8, 16384, 200, 1) })
      .host('arm', { labels: { arch: 'arm' } })
      .job('needs-gpu')
      .task('g', 'needs-gpu', { resources: res(2, 2048, 1, 1) })
      .job('needs-arm', { constraints: { labels: { arch: 'arm' } } })
      .task('a', 'needs-arm')
      .job('cpu')
      .task('c', 'cpu');
    const placed = placedOn(plan(w.s, placementTick, undefined, MONDAY_2AM));
    expect(placed.g).toBe('gpu');
    expect(placed.a).toBe('arm');
    expect(placed.c).not.toBe('gpu');
  });

  it('evaluates attribute rules: ==, !=, in, not_in, exists, not_exists on labels and host attributes', () => {
    const w = new World()
      .pool('p1')
      .host('a', { labels: { rack: '1' }, attributes: { 'host.name': 'pc-a', 'cpu.model': 'EPYC' } })
      .host('b', { labels: { rack: '2', ssd: 'true' }, attributes: { 'host.name': 'pc-b', 'cpu.model': 'Xeon' } })
      .host('c', { labels: {}, attributes: { 'host.name': 'pc-c' } });
    const cases: [string, ConstraintRule, string[]][] = [
      ['eq', { attribute: 'cpu.model', operator: '==', value: 'Xeon' }, ['b']],
      ['ne', { attribute: 'cpu.model', operator: '!=', value: 'Xeon' }, ['a', 'c']],
      ['in', { attribute: 'host.name', operator: 'in', value: ['pc-a', 'pc-c'] }, ['a', 'c']],
      ['notin', { attribute: 'label.rack', operator: 'not_in', value: ['1'] }, ['b', 'c']],
      ['exists', { attribute: 'label.ssd', operator: 'exists' }, ['b']],
      ['absent', { attribute: 'cpu.model', operator: 'not_exists' }, ['c']],
    ];
    for (const [name, rule, allowed] of cases) {
      w.job(name, { constraints: { labels: {}, rules: [rule] } });
      // one task per allowed host plus one: the extra one must stay queued, never land elsewhere
      for (let i = 0; i <= allowed.length; i++) w.task(`${name}-${i}`, name, { resources: res(1, 256, 1) });
    }
    const placed = placedOn(plan(w.s, placementTick, undefined, MONDAY_2AM));
    for (const [name, , allowed] of cases) {
      const hosts = Object.entries(placed)
        .filter(([task]) => task.startsWith(`${name}-`))
        .map(([, host]) => host);
      expect(hosts.length, name).toBeGreaterThan(0);
      for (const h of hosts) expect(allowed, `${name} placed on ${h}`).toContain(h);
    }
  });

  it('never over-commits cores, memory or disk', () => {
    const w = new World().pool('p1').host('h', { resources: res(8, 8192, 10) }).job('j');
    for (let i = 0; i < 10; i++) w.task(`t${i}`, 'j', { resources: res(1, 1024, 3) });
    const { plan: p, next } = step(w.s, placementTick, MONDAY_2AM);
    expect(commands(p, 'placeTask')).toHaveLength(3); // disk: 3 × 3 GiB of 10
    expect(checkInvariants(next)).toEqual([]);
  });
});

describe('ranking', () => {
  it('packs tightly: a task goes to the fuller PC, leaving the empty one whole', () => {
    const w = new World().pool('p1').host('empty').host('busy').job('old').task('running', 'old', { state: 'RUNNING', hostId: 'busy', resources: res(4, 8192, 1) }).job('j', { submitterId: 'sub-b' }).task('t', 'j');
    expect(placedOn(plan(w.s, placementTick, undefined, MONDAY_2AM)).t).toBe('busy');
  });

  it('resumes a checkpointed task where its checkpoint lies', () => {
    const w = new World().pool('p1').host('h1').host('h2').host('h3').job('j').task('t', 'j', { state: 'CHECKPOINTED', checkpoint: { kind: 'local', hostId: 'h2' } });
    const p = plan(w.s, placementTick, undefined, MONDAY_2AM);
    expect(commands(p, 'resumeTask')).toMatchObject([{ taskId: 't', hostId: 'h2', from: { kind: 'local', hostId: 'h2' } }]);
  });

  it('spreads tasks of one job across equally loaded PCs when asked to', () => {
    const w = new World().pool('p1').host('h1', { resources: res(4, 8192, 100) }).host('h2', { resources: res(4, 8192, 100) }).job('j');
    w.task('a', 'j', { resources: res(1, 1024, 1) }).task('b', 'j', { resources: res(1, 1024, 1) });
    const p = plan(w.s, placementTick, { candidatesPerTask: 8, probeLimit: 64, spreadWeight: 5, checkpointLocalityBonus: 5 }, MONDAY_2AM);
    expect(new Set(Object.values(placedOn(p))).size).toBe(2);
  });
});

describe('order: priority, deadlines, fair share', () => {
  it('higher priority goes first when there is room for only some', () => {
    const w = new World().pool('p1').host('h', { resources: res(4, 8192, 100) }).job('low', { priority: 1, submittedAt: 0 }).job('high', { priority: 90, submittedAt: 10 });
    w.task('l1', 'low', { resources: res(2, 1024, 1) }).task('l2', 'low', { resources: res(2, 1024, 1) });
    w.task('h1', 'high', { resources: res(2, 1024, 1) }).task('h2', 'high', { resources: res(2, 1024, 1) });
    expect(Object.keys(placedOn(plan(w.s, placementTick, undefined, MONDAY_2AM))).sort()).toEqual(['h1', 'h2']);
  });

  it('earliest deadline first within a priority and submitter', () => {
    const w = new World().pool('p1').host('h', { resources: res(2, 8192, 100) }).job('late', { deadline: MONDAY_2AM + 10e6 }).job('soon', { deadline: MONDAY_2AM + 1e6 }).job('none', { deadline: null });
    w.task('late-t', 'late').task('soon-t', 'soon').task('none-t', 'none');
    expect(Object.keys(placedOn(plan(w.s, placementTick, undefined, MONDAY_2AM)))).toEqual(['soon-t']);
  });

  it('shares capacity fairly between submitters of the same priority (dominant resource fairness)', () => {
    const w = new World().pool('p1').host('h1', { resources: res(8, 65536, 100) }).host('h2', { resources: res(8, 65536, 100) });
    w.job('a', { submitterId: 'alice-batch', submittedAt: 0 }).job('b', { submitterId: 'bob-batch', submittedAt: 1000 });
    for (let i = 0; i < 20; i++) w.task(`a${String(i).padStart(2, '0')}`, 'a', { resources: res(1, 1024, 1) });
    for (let i = 0; i < 20; i++) w.task(`b${String(i).padStart(2, '0')}`, 'b', { resources: res(1, 1024, 1) });
    const placed = Object.keys(placedOn(plan(w.s, placementTick, undefined, MONDAY_2AM)));
    expect(placed).toHaveLength(16);
    expect(placed.filter((id) => id.startsWith('a'))).toHaveLength(8);
  });

  it('counts what a submitter already runs: the other submitter catches up first', () => {
    const w = new World().pool('p1').host('h1', { resources: res(8, 65536, 100) });
    w.job('a', { submitterId: 'alice-batch' }).job('b', { submitterId: 'bob-batch' });
    for (let i = 0; i < 4; i++) w.task(`run${i}`, 'a', { state: 'RUNNING', hostId: 'h1', resources: res(1, 1024, 1) });
    for (let i = 0; i < 4; i++) w.task(`a${i}`, 'a', { resources: res(1, 1024, 1) }).task(`b${i}`, 'b', { resources: res(1, 1024, 1) });
    const placed = Object.keys(placedOn(plan(w.s, placementTick, undefined, MONDAY_2AM))).sort();
    expect(placed).toEqual(['b0', 'b1', 'b2', 'b3']);
  });
});

describe('job lifecycle', () => {
  it('a submitted job is placed in the same plan; cancelling stops running tasks and cancels queued ones', () => {
    const w = new World().pool('p1').host('h', { resources: res(2, 8192, 100) });
    const job = { id: 'j', poolId: null, submitterId: 's', priority: 1, deadline: null, checkpointable: false, maxRetries: 0, submittedAt: MONDAY_2AM, constraints: { labels: {} }, cancelled: false };
    const task = (id: string) => ({ id, jobId: 'j', resources: res(2, 1024, 1), state: 'QUEUED' as const, hostId: null, generation: 0, attempts: 0, restarts: 0, checkpoint: null, afterStop: null });
    let { plan: p, next } = step(w.s, { id: 'sub', type: 'jobSubmitted', job, tasks: [task('a'), task('b')] }, MONDAY_2AM);
    expect(commands(p, 'placeTask')).toHaveLength(1);
    ({ plan: p, next } = step(next, { id: 'cancel', type: 'jobCancelled', jobId: 'j' }, MONDAY_2AM + 1000));
    const running = Object.values(next.tasks).find((t) => t.state === 'STOPPING');
    expect(commands(p, 'stopBatch')).toMatchObject([{ then: 'cancel' }]);
    expect(Object.values(next.tasks).filter((t) => t.state === 'CANCELLED')).toHaveLength(1);
    const op = Object.values(next.operations).find((o) => o.type === 'stopBatch')!;
    ({ next } = step(next, { id: 'r', type: 'operationResult', operationId: op.id, outcome: 'succeeded', generation: op.generation }, MONDAY_2AM + 2000));
    expect(next.tasks[running!.id]?.state).toBe('CANCELLED');
  });

  it('a failed task is retried up to the job limit, then FAILED', () => {
    const w = new World().pool('p1').host('h').job('j', { maxRetries: 1 }).task('t', 'j', { state: 'RUNNING', hostId: 'h', generation: 1 });
    let { next } = step(w.s, { id: 'f1', type: 'taskFinished', taskId: 't', generation: 1, outcome: 'failed' }, MONDAY_2AM);
    expect(next.tasks.t).toMatchObject({ state: 'QUEUED', attempts: 1 });
    ({ next } = step(next, placementTick, MONDAY_2AM + 1));
    ({ next } = step(next, { id: 'f2', type: 'taskFinished', taskId: 't', generation: 2, outcome: 'failed' }, MONDAY_2AM + 2));
    expect(next.tasks.t).toMatchObject({ state: 'FAILED', attempts: 2 });
  });
});

describe('submission of a job already recorded', () => {
  it('creates nothing twice and places its queued tasks', () => {
    const w = new World().pool('p1').host('h').job('j').task('t', 'j');
    const p = plan(w.s, { id: 'sub', type: 'jobSubmitted', job: w.s.jobs.j!, tasks: [] }, undefined, MONDAY_2AM);
    expect(p.actions.filter((a) => a.type === 'recordTransition' && a.op === 'create' && a.entity !== 'operations')).toHaveLength(0);
    expect(commands(p, 'placeTask')).toMatchObject([{ taskId: 't', hostId: 'h' }]);
  });
});
