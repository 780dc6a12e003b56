// A presence or sign-in is planned from focusSnapshot (one PC, its person, their desktops, the
// batch on that PC) instead of the whole pool. Over random fleets, that plan must be exactly the
// plan made from the whole pool: same actions, same keys, same reasons, or the same failure.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { plan, type BatchTask, type DesktopVm, type Operation, type SchedulerEvent, type Snapshot } from '../src/core/index.js';
import { focusSnapshot, focusUserOf } from '../src/runtime/focus.js';
import { MINUTE, MONDAY_10AM, MONDAY_2AM, res, World } from './core-fixtures.js';

const VM_STATES: DesktopVm['state'][] = ['RUNNING', 'SUSPENDING', 'SUSPENDED', 'RESTORING', 'MIGRATING', 'STOPPED', 'LOST'];
const TASK_STATES: BatchTask['state'][] = ['QUEUED', 'RUNNING', 'CHECKPOINTING', 'STOPPING', 'CHECKPOINTED'];
const WEEK = 7 * 24 * 60 * MINUTE;

const hostArb = fc.record({
  online: fc.nat(9).map((n) => n < 8),
  asleep: fc.nat(9).map((n) => n < 2),
  needsReconcile: fc.nat(9).map((n) => n < 1),
  present: fc.boolean(),
  owner: fc.option(fc.nat(4), { nil: null }),
  cores: fc.integer({ min: 2, max: 16 }),
});
const vmArb = fc.record({
  owner: fc.nat(4),
  state: fc.constantFrom(...VM_STATES),
  // -1: a PC of another pool (not in the pool's snapshot).
  host: fc.integer({ min: -1, max: 5 }),
  source: fc.integer({ min: -1, max: 5 }),
  saved: fc.oneof(fc.constant('shared' as const), fc.integer({ min: -1, max: 5 })),
  cores: fc.integer({ min: 1, max: 8 }),
  augmented: fc.boolean(),
  desired: fc.option(fc.nat(5), { nil: null }),
  pinned: fc.boolean(),
});
const taskArb = fc.record({ job: fc.nat(2), state: fc.constantFrom(...TASK_STATES), host: fc.nat(5), cores: fc.integer({ min: 1, max: 6 }) });
const opArb = fc.record({ host: fc.nat(5), subjectHost: fc.nat(5), wake: fc.boolean() });
const fleetArb = fc.record({
  hosts: fc.array(hostArb, { minLength: 1, maxLength: 6 }),
  users: fc.integer({ min: 1, max: 5 }),
  arrivals: fc.array(fc.record({ user: fc.nat(4), weeksAgo: fc.integer({ min: 0, max: 3 }), minute: fc.nat(600) }), { maxLength: 6 }),
  vms: fc.array(vmArb, { maxLength: 8 }),
  jobs: fc.array(fc.record({ checkpointable: fc.boolean(), priority: fc.nat(3) }), { minLength: 3, maxLength: 3 }),
  tasks: fc.array(taskArb, { maxLength: 10 }),
  ops: fc.array(opArb, { maxLength: 4 }),
  storage: fc.constantFrom('local' as const, 'shared' as const),
  share: fc.constantFrom(0, 0.25, 0.5, 1),
  office: fc.boolean(),
});
const eventArb = fc.oneof(
  fc.record({ type: fc.constant('presence' as const), host: fc.nat(5), present: fc.boolean() }),
  fc.record({ type: fc.constant('signIn' as const), host: fc.nat(5), user: fc.nat(4) }),
);

type Fleet = typeof fleetArb extends fc.Arbitrary<infer T> ? T : never;

function build(f: Fleet): { s: Snapshot; now: number } {
  const now = f.office ? MONDAY_10AM : MONDAY_2AM;
  const w = new World().pool('p1', { storageMode: f.storage, maxBatchShareWhileOwnerPresent: f.share });
  const hostId = (i: number): string => (i < 0 ? 'elsewhere' : `h${i % f.hosts.length}`);
  const userId = (i: number): string => `u${i % f.users}`;
  f.hosts.forEach((h, i) =>
    w.host(`h${i}`, {
      online: h.online,
      asleep: h.asleep,
      needsReconcile: h.needsReconcile,
      presence: h.present ? 'present' : 'idle',
      presenceSince: now - 30 * MINUTE,
      ownerUserId: h.owner === null ? null : userId(h.owner),
      resources: res(h.cores, h.cores * 2048, 200),
    }),
  );
  for (let u = 0; u < f.users; u++) w.user(userId(u), { homeHostId: `h${u % f.hosts.length}` });
  for (const a of f.arrivals) w.s.users[userId(a.user)]?.arrivals.push(now - a.weeksAgo * WEEK - a.minute * MINUTE);
  f.vms.forEach((v, i) => {
    const holds = v.state !== 'SUSPENDED' && v.state !== 'STOPPED';
    const host = holds ? hostId(v.host) : null;
    w.desktop(`vm${i}`, userId(v.owner), {
      state: v.state,
      hostId: host,
      sourceHostId: v.state === 'MIGRATING' || v.state === 'LOST' ? hostId(v.source) : null,
      savedState: v.state === 'SUSPENDED' ? (v.saved === 'shared' ? { kind: 'shared' } : { kind: 'local', hostId: hostId(v.saved) }) : null,
      size: res(v.cores, v.cores * 1024, 10),
      augmented: v.augmented && v.state === 'RUNNING' ? { cores: 1, memoryMiB: 1024 } : null,
      desiredHostId: v.desired === null ? null : hostId(v.desired),
      pinned: v.pinned,
      generation: 2,
    });
  });
  f.jobs.forEach((j, i) => w.job(`j${i}`, { checkpointable: j.checkpointable, priority: j.priority, submittedAt: i }));
  f.tasks.forEach((t, i) => {
    const onHost = t.state === 'RUNNING' || t.state === 'CHECKPOINTING' || t.state === 'STOPPING';
    w.task(`t${i}`, `j${t.job}`, { state: t.state, hostId: onHost ? hostId(t.host) : null, resources: res(t.cores, t.cores * 1024, 1), generation: 1 });
  });
  f.ops.forEach((o, i) => {
    const op: Operation = o.wake
      ? { id: `op${i}`, type: 'wakeHost', subject: { kind: 'host', id: hostId(o.subjectHost) }, hostId: hostId(o.host), generation: 0, startedAt: now - MINUTE }
      : { id: `op${i}`, type: 'sleepHost', subject: { kind: 'host', id: hostId(o.host) }, hostId: hostId(o.host), generation: 0, startedAt: now - MINUTE };
    w.s.operations[op.id] = op;
  });
  return { s: w.s, now };
}

function toEvent(e: typeof eventArb extends fc.Arbitrary<infer T> ? T : never, s: Snapshot): SchedulerEvent {
  const hosts = Object.keys(s.hosts);
  const hostId = hosts[e.host % hosts.length] as string;
  if (e.type === 'presence') return { type: 'presence', id: 'ev1', hostId, presence: e.present ? 'present' : 'idle' };
  const users = Object.keys(s.users);
  return { type: 'signIn', id: 'ev1', hostId, userId: users[e.user % users.length] as string };
}

function outcome(s: Snapshot, event: SchedulerEvent, now: number): unknown {
  try {
    return { plan: plan(s, event, undefined, now) };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

describe('focusSnapshot', () => {
  it('plans a presence or sign-in exactly as the whole pool does, over random fleets', () => {
    let smaller = 0;
    let withCommands = 0;
    fc.assert(
      fc.property(fleetArb, eventArb, (fleet, e) => {
        const { s, now } = build(fleet);
        const event = toEvent(e, s);
        const focus = { hostId: (event as { hostId: string }).hostId, userId: event.type === 'signIn' ? event.userId : null };
        const focused = focusSnapshot(s, focus);
        const whole = outcome(s, event, now);
        expect(outcome(focused, event, now)).toEqual(whole);
        if (Object.keys(focused.vms).length + Object.keys(focused.hosts).length < Object.keys(s.vms).length + Object.keys(s.hosts).length) smaller += 1;
        if ((whole as { plan?: { actions: { type: string }[] } }).plan?.actions.some((a) => a.type !== 'recordTransition')) withCommands += 1;
      }),
      { numRuns: Number(process.env.FOCUS_PROPERTY_RUNS ?? 3000) },
    );
    // The runs must exercise real narrowing and real decisions, or passing means little.
    expect(smaller).toBeGreaterThan(100);
    expect(withCommands).toBeGreaterThan(100);
  });

  it('keeps only the PC, the hosts its person’s desktops name, that person and the batch on the PC', () => {
    const w = new World().pool('p1');
    w.person('ann', 'h1', { state: 'SUSPENDED', hostId: null, savedState: { kind: 'local', hostId: 'h2' } });
    w.person('bob', 'h3', { state: 'RUNNING' });
    w.host('h2');
    w.job('j1').task('t1', 'j1', { state: 'RUNNING', hostId: 'h1' }).task('t2', 'j1', { state: 'RUNNING', hostId: 'h3' });
    const focused = focusSnapshot(w.s, { hostId: 'h1', userId: null });
    expect(focusUserOf(w.s, { hostId: 'h1', userId: null })).toBe('ann');
    expect(Object.keys(focused.hosts).sort()).toEqual(['h1', 'h2']);
    expect(Object.keys(focused.users)).toEqual(['ann']);
    expect(Object.keys(focused.vms)).toEqual(['vm-ann']);
    expect(Object.keys(focused.tasks)).toEqual(['t1']);
    expect(Object.keys(focused.jobs)).toEqual(['j1']);
  });

  it('is the whole pool when a saved state waits on a sleeping PC (waking it needs a peer of the pool)', () => {
    const w = new World().pool('p1');
    w.person('ann', 'h1', { state: 'SUSPENDED', hostId: null, savedState: { kind: 'local', hostId: 'h2' } });
    w.host('h2', { asleep: true });
    w.host('h3');
    expect(focusSnapshot(w.s, { hostId: 'h1', userId: null })).toBe(w.s);
  });
});
