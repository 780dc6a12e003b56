import { describe, expect, it } from 'vitest';
import { defaultPolicy, plan, predictArrival } from '../src/core/index.js';
import { answer, commands, DAY, MINUTE, res, step, World } from './core-fixtures.js';

const WEEK = 7 * DAY;
/** Monday 30 November 2026 (a week after the fixtures' Monday), 00:00 UTC. */
const MONDAY = Date.UTC(2026, 10, 30);
const at = (h: number, m = 0) => MONDAY + h * 3600_000 + m * MINUTE;
/** Alice arrived at 08:30 on the last four Mondays. */
const aliceArrivals = [1, 2, 3, 4].map((k) => at(8, 30) - k * WEEK);

describe('arrival prediction', () => {
  const policy = defaultPolicy();
  const user = (arrivals: number[]) => ({ id: 'u', poolId: 'p1', homeHostId: null, arrivals, preStage: null });

  it('predicts the usual arrival time on the same weekday', () => {
    expect(predictArrival(user(aliceArrivals), policy, at(6))).toBe(at(8, 30));
  });

  it('weighs recent weeks more: a change two weeks running wins over older habit', () => {
    const arrivals = [at(7, 0) - WEEK, at(7, 0) - 2 * WEEK, at(9, 0) - 3 * WEEK, at(9, 0) - 4 * WEEK, at(9, 0) - 5 * WEEK];
    expect(predictArrival(user(arrivals), policy, at(5))).toBe(at(7, 0));
  });

  it('ignores other weekdays and has no prediction without history', () => {
    expect(predictArrival(user([at(8) - DAY, at(8) - 2 * DAY]), policy, at(5))).toBeNull();
    expect(predictArrival(user([]), policy, at(5))).toBeNull();
  });

  it('works in the pool time zone', () => {
    const berlin = defaultPolicy({ timeZone: 'Europe/Berlin' });
    // 08:30 in Berlin (UTC+1 in winter) is 07:30 UTC.
    const arrivals = [1, 2].map((k) => at(7, 30) - k * WEEK);
    expect(predictArrival(user(arrivals), berlin, at(5))).toBe(at(7, 30));
  });
});

describe('pre-staging', () => {
  const world = (policy = {}) =>
    new World()
      .pool('p1', policy)
      .person('alice', 'h1', { state: 'SUSPENDED', hostId: null, savedState: { kind: 'local', hostId: 'h1' } })
      .host('h2');

  it('restores shortly before the predicted arrival and records the prediction', () => {
    const w = world();
    w.s.users.alice!.arrivals = aliceArrivals;
    const { plan: p, next } = step(w.s, { id: 'pre', type: 'tick', timer: 'preStage' }, at(8, 25));
    expect(commands(p, 'restoreDesktop')).toMatchObject([{ vmId: 'vm-alice', hostId: 'h1' }]);
    expect(next.users.alice?.preStage).toMatchObject({ predictedAt: at(8, 30), localDate: '2026-11-30' });
  });

  it('does nothing outside the lead time, and only once a day', () => {
    const w = world();
    w.s.users.alice!.arrivals = aliceArrivals;
    expect(commands(plan(w.s, { id: 'early', type: 'tick', timer: 'preStage' }, undefined, at(7, 0)), 'restoreDesktop')).toHaveLength(0);
    w.s.users.alice!.preStage = { localDate: '2026-11-30', predictedAt: at(8, 30), stagedAt: at(8, 21) };
    expect(commands(plan(w.s, { id: 'again', type: 'tick', timer: 'preStage' }, undefined, at(8, 25)), 'restoreDesktop')).toHaveLength(0);
  });

  it('stays within the pool budget of batch time given up', () => {
    const w = world({ preStaging: { enabled: true, leadMs: 10 * MINUTE, dailyBudgetCoreMs: 8 * 5 * MINUTE, historyWeeks: 6 } })
      .job('j')
      .task('big', 'j', { state: 'RUNNING', hostId: 'h1', resources: res(8, 16384, 1) });
    w.s.users.alice!.arrivals = aliceArrivals;
    // 8 cores × 10 minutes exceeds the 40 core-minute budget …
    const over = plan(w.s, { id: 'pre', type: 'tick', timer: 'preStage' }, undefined, at(8, 20));
    expect(commands(over, 'restoreDesktop')).toHaveLength(0);
    expect(over.reasons.map((r) => r.code)).toContain('preStageBudget');
    // … 8 cores × 5 minutes fits: the batch yields, the desktop is restored, the budget is charged.
    const { plan: p, next } = step(w.s, { id: 'pre2', type: 'tick', timer: 'preStage' }, at(8, 25));
    expect(commands(p, 'checkpointBatch')).toHaveLength(1);
    expect(commands(p, 'restoreDesktop')).toHaveLength(1);
    expect(next.pools.p1?.preStageBudget).toEqual({ localDate: '2026-11-30', usedCoreMs: 8 * 5 * MINUTE });
  });

  it('wakes a sleeping home PC through an awake peer first', () => {
    const w = world();
    w.s.hosts.h1!.asleep = true;
    w.s.users.alice!.arrivals = aliceArrivals;
    const p = plan(w.s, { id: 'pre', type: 'tick', timer: 'preStage' }, undefined, at(8, 25));
    expect(commands(p, 'wakeHost')).toMatchObject([{ hostId: 'h2', targetHostId: 'h1' }]);
  });

  it('reports predicted against actual arrival at the first tap of the day', () => {
    const w = world();
    w.s.users.alice!.arrivals = aliceArrivals;
    let { next } = step(w.s, { id: 'pre', type: 'tick', timer: 'preStage' }, at(8, 25));
    ({ next } = answer(next, 'restoreDesktop', 'vm-alice', 'succeeded', at(8, 26)));
    const tap = plan(next, { id: 'tap', type: 'presence', hostId: 'h1', presence: 'present' }, undefined, at(8, 34));
    expect(tap.actions.filter((a) => a.type === 'reportArrival')).toMatchObject([{ userId: 'alice', predictedAt: at(8, 30), actualAt: at(8, 34), desktopWasRunning: true }]);
  });

  it('a pre-staged desktop is not idle-suspended before its person is due', () => {
    const w = world({ nightWindow: { start: '19:00', end: '09:00' } });
    w.s.users.alice!.arrivals = aliceArrivals;
    let { next } = step(w.s, { id: 'pre', type: 'tick', timer: 'preStage' }, at(8, 25));
    ({ next } = answer(next, 'restoreDesktop', 'vm-alice', 'succeeded', at(8, 26)));
    expect(commands(plan(next, { id: 'idle', type: 'tick', timer: 'idleCheck' }, undefined, at(8, 35)), 'suspendDesktop')).toHaveLength(0);
  });
});

describe('morning drain', () => {
  it('before office hours, batch leaves PCs with owners; ownerless PCs keep theirs', () => {
    const w = new World()
      .pool('p1', { morningDrainLeadMs: 20 * MINUTE })
      .person('alice', 'h1', { state: 'SUSPENDED', hostId: null, savedState: { kind: 'local', hostId: 'h1' } })
      .host('lab')
      .job('j')
      .task('on-owned', 'j', { state: 'RUNNING', hostId: 'h1' })
      .task('on-lab', 'j', { state: 'RUNNING', hostId: 'lab' });
    expect(commands(plan(w.s, { id: 'd0', type: 'tick', timer: 'morningDrain' }, undefined, at(7, 0)), 'checkpointBatch')).toHaveLength(0);
    const p = plan(w.s, { id: 'd', type: 'tick', timer: 'morningDrain' }, undefined, at(7, 45));
    expect(commands(p, 'checkpointBatch').map((c) => c.taskId)).toEqual(['on-owned']);
    // And nothing new is placed on the owned PC meanwhile.
    const w2 = new World().pool('p1').person('alice', 'h1', { state: 'SUSPENDED', hostId: null, savedState: { kind: 'shared' } }).job('j').task('t', 'j');
    expect(commands(plan(w2.s, { id: 'pl', type: 'tick', timer: 'placement' }, undefined, at(7, 45)), 'placeTask')).toHaveLength(0);
  });

  it('drains before a predicted early arrival too', () => {
    const w = new World().pool('p1').person('alice', 'h1', { state: 'SUSPENDED', hostId: null, savedState: { kind: 'shared' } }).job('j').task('t', 'j', { state: 'RUNNING', hostId: 'h1' });
    w.s.users.alice!.arrivals = [1, 2].map((k) => at(6, 0) - k * WEEK);
    expect(commands(plan(w.s, { id: 'd', type: 'tick', timer: 'morningDrain' }, undefined, at(5, 50)), 'checkpointBatch')).toHaveLength(1);
  });
});

describe('power', () => {
  it('puts an idle PC with nothing to do to sleep, not one with work or a person', () => {
    const w = new World()
      .pool('p1')
      .host('empty', { presence: 'idle', presenceSince: 0 })
      .host('working', { presence: 'idle', presenceSince: 0 })
      .host('someone', { presence: 'present', presenceSince: 0 })
      .job('j')
      .task('t', 'j', { state: 'RUNNING', hostId: 'working' });
    const { plan: p, next } = step(w.s, { id: 'pw', type: 'tick', timer: 'power' }, at(2));
    expect(commands(p, 'sleepHost').map((c) => c.hostId)).toEqual(['empty']);
    expect(next.hosts.empty?.asleep).toBe(true);
  });

  it('does not sleep when the pool turns power management off', () => {
    const w = new World().pool('p1', { powerManagement: false }).host('empty');
    expect(commands(plan(w.s, { id: 'pw', type: 'tick', timer: 'power' }, undefined, at(2)), 'sleepHost')).toHaveLength(0);
  });

  it('wakes sleeping PCs when queued batch work has nowhere to go', () => {
    const w = new World().pool('p1').host('awake', { resources: res(2, 4096, 100) }).host('zz1', { asleep: true }).host('zz2', { asleep: true }).job('j');
    for (let i = 0; i < 4; i++) w.task(`t${i}`, 'j', { resources: res(2, 1024, 1) });
    const p = plan(w.s, { id: 'pw', type: 'tick', timer: 'power' }, undefined, at(2));
    // 8 cores queued, 2 free: one 8-core PC covers the rest.
    expect(commands(p, 'wakeHost')).toMatchObject([{ hostId: 'awake', targetHostId: 'zz1' }]);
  });

  it('a PC we put to sleep going quiet is not a lost host', () => {
    const w = new World().pool('p1').host('zz', { asleep: true });
    const p = plan(w.s, { id: 'hb', type: 'heartbeatLost', hostId: 'zz' }, undefined, at(2));
    expect(p.actions).toHaveLength(0);
  });
});

describe('augment', () => {
  const w = () =>
    new World()
      .pool('p1', { batchWindow: 'always', maxBatchShareWhileOwnerPresent: 0.5, augment: { enabled: true, maxExtraCores: 2, maxExtraMemoryMiB: 4096 } })
      .person('alice', 'h1', { state: 'RUNNING', size: res(2, 4096) }, { presence: 'present', resources: res(8, 16384, 100) })
      .job('j')
      .task('t1', 'j', { state: 'RUNNING', hostId: 'h1', resources: res(4, 8192, 1) });

  it('hot-adds to a starved desktop of a present person from free room', () => {
    const { plan: p, next } = step(w().s, { id: 'st', type: 'resourcePressure', vmId: 'vm-alice', starved: true }, at(10));
    const [hot] = commands(p, 'hotplug');
    expect(commands(p, 'checkpointBatch')).toHaveLength(0);
    expect(hot).toMatchObject({ vmId: 'vm-alice', addCores: 2, addMemoryMiB: 4096, undo: false });
    expect(next.vms['vm-alice']?.augmented).toEqual({ cores: 2, memoryMiB: 4096 });
  });

  it('makes batch on that PC yield when there is no free room', () => {
    const s = w().s;
    s.vms['vm-alice']!.size = res(4, 8192);
    const p = plan(s, { id: 'st', type: 'resourcePressure', vmId: 'vm-alice', starved: true }, undefined, at(10));
    const [ckpt] = commands(p, 'checkpointBatch');
    expect(ckpt?.taskId).toBe('t1');
    expect(commands(p, 'hotplug')).toMatchObject([{ addCores: 2, addMemoryMiB: 4096, after: [ckpt!.key] }]);
  });

  it('gives the resources back when the person leaves', () => {
    let { next } = step(w().s, { id: 'st', type: 'resourcePressure', vmId: 'vm-alice', starved: true }, at(10));
    const { plan: p } = ({ next } = step(next, { id: 'idle', type: 'presence', hostId: 'h1', presence: 'idle' }, at(11)));
    expect(commands(p, 'hotplug')).toMatchObject([{ addCores: -2, addMemoryMiB: -4096, undo: true }]);
    expect(next.vms['vm-alice']?.augmented).toBeNull();
  });

  it('does not augment when nobody is at the PC', () => {
    const s = w().s;
    s.hosts.h1!.presence = 'idle';
    const p = plan(s, { id: 'st', type: 'resourcePressure', vmId: 'vm-alice', starved: true }, undefined, at(10));
    expect(commands(p, 'hotplug')).toHaveLength(0);
    expect(p.reasons[0]?.code).toBe('ownerAbsent');
  });
});

describe('a sleeping PC that wakes by itself', () => {
  it('is usable again once its agent reconnects, without a reconcile (it held nothing)', () => {
    const w = new World().pool('p1').host('zz', { asleep: true }).job('j').task('t', 'j');
    const { plan: p, next } = step(w.s, { id: 'back', type: 'hostBack', hostId: 'zz' }, at(2));
    expect(commands(p, 'reconcileHost')).toHaveLength(0);
    expect(next.hosts.zz?.asleep).toBe(false);
    expect(commands(plan(next, { id: 'pl', type: 'tick', timer: 'placement' }, undefined, at(2)), 'placeTask')).toMatchObject([{ hostId: 'zz' }]);
  });
});
