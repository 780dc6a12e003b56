// Property tests: thousands of random event sequences against a small office. The core's own
// actions are applied to the snapshot, and a simulated fleet of agents carries commands out
// (with generation fencing, partitions and power-offs) to check what really runs where.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyPlan, checkInvariants, plan, type Command, type DesktopVm, type PoolPolicy, type SchedulerEvent, type Snapshot, type TimerKind } from '../src/core/index.js';
import { DEFAULT_SETTINGS, type PlannerSettings } from '../src/core/settings.js';
import { MINUTE, MONDAY_2AM, res, World } from './core-fixtures.js';

// ------------------------------------------------------------------ simulated agents

class Fleet {
  /** Desktop domains actually running, per host, with the generation they run under. */
  readonly domains = new Map<string, Map<string, number>>();
  /** Batch VMs actually running: task → hosts. */
  readonly taskRuns = new Map<string, Set<string>>();
  readonly partitioned = new Set<string>();
  /** Highest generation each host's agent has seen per subject: older commands are refused. */
  private readonly seen = new Map<string, number>();
  readonly commands = new Map<string, Command>();

  constructor(s: Snapshot) {
    for (const h of Object.keys(s.hosts)) this.domains.set(h, new Map());
    for (const vm of Object.values(s.vms)) if (vm.state === 'RUNNING' && vm.hostId) this.domains.get(vm.hostId)!.set(vm.id, vm.generation);
    for (const t of Object.values(s.tasks)) if (t.state === 'RUNNING' && t.hostId) this.taskRuns.set(t.id, new Set([t.hostId]));
  }

  private static subjectOf(cmd: Command): string {
    return 'vmId' in cmd ? cmd.vmId : 'taskId' in cmd ? cmd.taskId : cmd.hostId;
  }

  /** Commands reach a host's agent in plan order over its one connection (unless cut off). */
  deliver(cmd: Command): void {
    this.commands.set(cmd.key, cmd);
    if (this.partitioned.has(cmd.hostId)) return;
    const k = `${cmd.hostId}/${Fleet.subjectOf(cmd)}`;
    this.seen.set(k, Math.max(this.seen.get(k) ?? -1, cmd.generation));
  }

  private accept(host: string, subject: string, generation: number): boolean {
    return (this.seen.get(`${host}/${subject}`) ?? -1) <= generation;
  }

  /** Carries out a command; returns the outcome the agent reports (a refused command fails). */
  execute(cmd: Command, wanted: 'succeeded' | 'failed'): { outcome: 'succeeded' | 'failed'; found?: string[]; foundTasks?: string[] } {
    if (cmd.type === 'reconcileHost') {
      const keep = new Set(cmd.expect.vms.map((v) => v.vmId));
      const doms = this.domains.get(cmd.hostId)!;
      for (const vm of [...doms.keys()]) if (!keep.has(vm)) doms.delete(vm);
      const keepTasks = new Set(cmd.expect.tasks.map((t) => t.taskId));
      for (const [task, hosts] of this.taskRuns) if (!keepTasks.has(task)) hosts.delete(cmd.hostId);
      const foundTasks = [...this.taskRuns].filter(([, hosts]) => hosts.has(cmd.hostId)).map(([task]) => task);
      return { outcome: 'succeeded', found: [...doms.keys()].sort(), foundTasks: foundTasks.sort() };
    }
    if (wanted === 'failed') return { outcome: 'failed' };
    if (!this.accept(cmd.hostId, Fleet.subjectOf(cmd), cmd.generation)) return { outcome: 'failed' };
    switch (cmd.type) {
      case 'restoreDesktop':
        this.domains.get(cmd.hostId)!.set(cmd.vmId, cmd.generation);
        break;
      case 'migrateDesktop':
        this.domains.get(cmd.fromHostId)!.delete(cmd.vmId);
        this.domains.get(cmd.hostId)!.set(cmd.vmId, cmd.generation);
        break;
      case 'suspendDesktop':
        this.domains.get(cmd.hostId)!.delete(cmd.vmId);
        break;
      case 'placeTask':
      case 'resumeTask': {
        const runs = this.taskRuns.get(cmd.taskId) ?? new Set<string>();
        runs.add(cmd.hostId);
        this.taskRuns.set(cmd.taskId, runs);
        break;
      }
      default:
        break;
    }
    return { outcome: 'succeeded' };
  }

  /** Stop/checkpoint end the batch VM whatever the outcome (the agent kills it after the grace). */
  afterYieldAnswer(cmd: Command): void {
    if (cmd.type === 'checkpointBatch' || cmd.type === 'stopBatch') this.taskRuns.get(cmd.taskId)?.delete(cmd.hostId);
  }

  /** A PC cut off from the control plane keeps running everything: desktops and batch. */
  partition(host: string): void {
    this.partitioned.add(host);
  }

  powerOff(host: string): void {
    this.domains.get(host)!.clear();
    for (const hosts of this.taskRuns.values()) hosts.delete(host);
  }
}

// ------------------------------------------------------------------ office and events

const HOSTS = ['h1', 'h2', 'h3', 'lab'];
const USERS = ['alice', 'bob', 'carol'];
const TIMERS: TimerKind[] = ['idleCheck', 'nightStart', 'preStage', 'power', 'morningDrain', 'placement'];

function office(policy: Partial<PoolPolicy>, taskShapes: { cores: number; ckpt: boolean; prio: number; sub: number }[]): Snapshot {
  const w = new World().pool('p1', policy);
  w.person('alice', 'h1', { state: 'RUNNING', size: res(2, 4096, 10) }, { presence: 'idle', presenceSince: 0, resources: res(8, 16384, 100) });
  w.person('bob', 'h2', { state: 'SUSPENDED', hostId: null, savedState: policy.storageMode === 'shared' ? { kind: 'shared' } : { kind: 'local', hostId: 'h2' }, size: res(4, 8192, 10) }, { presence: 'idle', presenceSince: 0, resources: res(8, 16384, 100) });
  w.person('carol', 'h3', { state: 'RUNNING', size: res(2, 4096, 10) }, { presence: 'present', presenceSince: 0, resources: res(4, 8192, 100) });
  w.host('lab', { resources: res(16, 32768, 200) });
  w.s.users.alice!.arrivals = [1, 2, 3].map((k) => MONDAY_2AM + 6 * 60 * MINUTE - k * 7 * 24 * 60 * MINUTE);
  taskShapes.forEach((t, i) => {
    w.job(`j${i}`, { checkpointable: t.ckpt, priority: t.prio, submitterId: `s${t.sub}`, submittedAt: i });
    w.task(`t${i}`, `j${i}`, { resources: res(t.cores, t.cores * 1024, 5) });
  });
  return w.s;
}

type Step =
  | { k: 'presence'; host: number; present: boolean }
  | { k: 'signIn'; user: number; host: number }
  | { k: 'lose'; host: number }
  | { k: 'back'; host: number }
  | { k: 'fence'; host: number }
  | { k: 'answer'; op: number; ok: boolean }
  | { k: 'finish'; task: number; ok: boolean }
  | { k: 'tick'; timer: number }
  | { k: 'pin'; user: number; pinned: boolean }
  | { k: 'pressure'; user: number; starved: boolean }
  | { k: 'submit'; cores: number; ckpt: boolean; prio: number }
  | { k: 'cancel'; job: number }
  | { k: 'wait'; minutes: number };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ k: fc.constant('presence' as const), host: fc.nat(3), present: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('signIn' as const), user: fc.nat(2), host: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('lose' as const), host: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('back' as const), host: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('fence' as const), host: fc.nat(3) }) },
  { weight: 8, arbitrary: fc.record({ k: fc.constant('answer' as const), op: fc.nat(20), ok: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('finish' as const), task: fc.nat(20), ok: fc.boolean() }) },
  { weight: 7, arbitrary: fc.record({ k: fc.constant('tick' as const), timer: fc.nat(TIMERS.length - 1) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('pin' as const), user: fc.nat(2), pinned: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('pressure' as const), user: fc.nat(2), starved: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('submit' as const), cores: fc.integer({ min: 1, max: 6 }), ckpt: fc.boolean(), prio: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('cancel' as const), job: fc.nat(20) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('wait' as const), minutes: fc.integer({ min: 1, max: 240 }) }) },
);

const policyArb = fc.record({
  storageMode: fc.constantFrom('shared' as const, 'local' as const),
  batchWindow: fc.constantFrom('always' as const, 'outsideOfficeHours' as const),
  maxBatchShareWhileOwnerPresent: fc.constantFrom(0, 0.25, 0.5),
  suspendIdleAnyTime: fc.boolean(),
  powerManagement: fc.boolean(),
});

const tasksArb = fc.array(fc.record({ cores: fc.integer({ min: 1, max: 8 }), ckpt: fc.boolean(), prio: fc.nat(3), sub: fc.nat(2) }), { maxLength: 8 });

interface Run {
  s: Snapshot;
  fleet: Fleet;
  now: number;
  seq: number;
  jobs: number;
}

function toEvent(run: Run, st: Step): { event: SchedulerEvent; opCmd?: Command } | null {
  const id = `e${run.seq++}`;
  const host = (i: number) => HOSTS[i % HOSTS.length]!;
  const sorted = <T extends { id: string }>(xs: T[]) => xs.sort((a, b) => (a.id < b.id ? -1 : 1));
  switch (st.k) {
    case 'presence':
      if (!run.s.hosts[host(st.host)]!.online) return null; // a silent PC reports nothing
      return { event: { id, type: 'presence', hostId: host(st.host), presence: st.present ? 'present' : 'idle' } };
    case 'signIn':
      if (!run.s.hosts[host(st.host)]!.online) return null;
      return { event: { id, type: 'signIn', userId: USERS[st.user % USERS.length]!, hostId: host(st.host) } };
    case 'lose':
      return { event: { id, type: 'heartbeatLost', hostId: host(st.host) } };
    case 'back':
      if (run.s.hosts[host(st.host)]!.online) return null;
      return { event: { id, type: 'hostBack', hostId: host(st.host) } };
    case 'fence':
      if (!run.fleet.partitioned.has(host(st.host))) return null; // only a host that is really cut off can be powered off
      return { event: { id, type: 'hostFenced', hostId: host(st.host) } };
    case 'answer': {
      const ops = sorted(Object.values(run.s.operations)).filter((o) => !run.fleet.partitioned.has(o.hostId));
      if (ops.length === 0) return null;
      const op = ops[st.op % ops.length]!;
      const cmd = run.fleet.commands.get(op.id)!;
      const r = run.fleet.execute(cmd, st.ok ? 'succeeded' : 'failed');
      run.fleet.afterYieldAnswer(cmd);
      return { event: { id, type: 'operationResult', operationId: op.id, outcome: r.outcome, generation: op.generation, ...(r.found ? { foundRunningVmIds: r.found } : {}), ...(r.foundTasks ? { foundRunningTaskIds: r.foundTasks } : {}) }, opCmd: cmd };
    }
    case 'finish': {
      // A guest on a cut-off PC may end, but its report cannot arrive until the PC is back.
      const running = sorted(Object.values(run.s.tasks)).filter((t) => t.state === 'RUNNING' && t.hostId && !run.fleet.partitioned.has(t.hostId) && run.fleet.taskRuns.get(t.id)?.has(t.hostId));
      if (running.length === 0) return null;
      const t = running[st.task % running.length]!;
      run.fleet.taskRuns.get(t.id)!.delete(t.hostId!);
      return { event: { id, type: 'taskFinished', taskId: t.id, generation: t.generation, outcome: st.ok ? 'succeeded' : 'failed' } };
    }
    case 'tick':
      return { event: { id, type: 'tick', timer: TIMERS[st.timer]! } };
    case 'pin':
      return { event: { id, type: 'pin', vmId: `vm-${USERS[st.user % USERS.length]}`, pinned: st.pinned } };
    case 'pressure':
      return { event: { id, type: 'resourcePressure', vmId: `vm-${USERS[st.user % USERS.length]}`, starved: st.starved } };
    case 'submit': {
      const j = `sub${run.jobs++}`;
      const job = { id: j, poolId: null, submitterId: `s${st.prio}`, priority: st.prio, deadline: null, checkpointable: st.ckpt, maxRetries: 1, submittedAt: run.now, constraints: { labels: {} }, cancelled: false };
      const task = { id: `${j}-t`, jobId: j, resources: res(st.cores, st.cores * 1024, 5), state: 'QUEUED' as const, hostId: null, generation: 0, attempts: 0, restarts: 0, checkpoint: null, afterStop: null };
      return { event: { id, type: 'jobSubmitted', job, tasks: [task] } };
    }
    case 'cancel': {
      const jobs = sorted(Object.values(run.s.jobs));
      if (jobs.length === 0) return null;
      return { event: { id, type: 'jobCancelled', jobId: jobs[st.job % jobs.length]!.id } };
    }
    case 'wait':
      run.now += st.minutes * MINUTE;
      return null;
  }
}

function footprintFitsBesideOtherDesktops(s: Snapshot, vm: DesktopVm, hostId: string): boolean {
  const h = s.hosts[hostId]!;
  let cores = 0;
  let mem = 0;
  for (const o of Object.values(s.vms)) {
    if (o.id === vm.id) continue;
    if (['RUNNING', 'SUSPENDING', 'RESTORING', 'MIGRATING', 'LOST'].includes(o.state) && (o.hostId === hostId || o.sourceHostId === hostId)) {
      cores += o.size.cores + (o.augmented?.cores ?? 0);
      mem += o.size.memoryMiB + (o.augmented?.memoryMiB ?? 0);
    }
  }
  return cores + vm.size.cores <= h.resources.cores && mem + vm.size.memoryMiB <= h.resources.memoryMiB;
}

function checkStep(before: Snapshot, event: SchedulerEvent, p: ReturnType<typeof plan>, after: Snapshot, fleet: Fleet): void {
  // Snapshot invariants: consistency, no over-commit, batch within the share next to a present owner.
  expect(checkInvariants(after)).toEqual([]);
  // A desktop is never lost from the snapshot.
  expect(Object.keys(after.vms).sort()).toEqual(Object.keys(before.vms).sort());
  for (const vm of Object.values(after.vms)) {
    const prev = before.vms[vm.id]!;
    expect(vm.generation).toBeGreaterThanOrEqual(prev.generation);
    // Generation strictly increases across moves (a failed migration returning to its source is no move).
    const wasAt = [prev.hostId, prev.sourceHostId].filter((h) => h !== null);
    if (vm.hostId !== null && !wasAt.includes(vm.hostId)) expect(vm.generation).toBeGreaterThan(prev.generation);
    if (vm.state === 'RESTORING' && prev.state !== 'RESTORING') expect(vm.generation).toBeGreaterThan(prev.generation);
  }
  // Never two start commands for one subject in one plan; a task starts only from the queue,
  // or (already placed, RUNNING) once the move of its checkpoint to its new PC succeeded.
  const starts = p.actions.filter((a): a is Command => a.type === 'placeTask' || a.type === 'resumeTask');
  expect(new Set(starts.map((c) => (c as { taskId: string }).taskId)).size).toBe(starts.length);
  const answered = event.type === 'operationResult' ? before.operations[event.operationId] : undefined;
  for (const c of starts) {
    const taskId = (c as { taskId: string }).taskId;
    const t = before.tasks[taskId];
    const afterMove = c.type === 'resumeTask' && answered?.type === 'moveCheckpoint' && answered.subject.id === taskId && event.type === 'operationResult' && event.outcome === 'succeeded';
    if (t) expect(afterMove ? ['RUNNING'] : ['QUEUED', 'CHECKPOINTED']).toContain(t.state);
  }
  const desk = p.actions.filter((a): a is Command => a.type === 'restoreDesktop' || a.type === 'migrateDesktop' || a.type === 'moveSavedState');
  expect(new Set(desk.map((c) => (c as { vmId: string }).vmId)).size).toBe(desk.length);
  // Non-checkpointable work restarts from zero exactly once per preemption.
  for (const t of Object.values(after.tasks)) {
    const prev = before.tasks[t.id];
    if (!prev) continue;
    const delta = t.restarts - prev.restarts;
    expect(delta === 0 || delta === 1).toBe(true);
    if (delta === 1) expect(['RUNNING', 'STOPPING', 'CHECKPOINTING']).toContain(prev.state);
    if (prev.state === 'STOPPING' && t.state === 'QUEUED') expect(delta).toBe(1);
  }
  // Presence always wins: a tap at the home PC starts the desktop in the same plan.
  if (event.type === 'presence' && event.presence === 'present') {
    const host = before.hosts[event.hostId]!;
    const vm = Object.values(before.vms).find((v) => v.ownerUserId === host.ownerUserId);
    const savedReachable = (v: DesktopVm) => {
      const loc = v.savedState;
      if (!loc || loc.kind === 'shared') return true;
      const holder = before.hosts[loc.hostId]!;
      return holder.online && !holder.needsReconcile && !holder.asleep;
    };
    if (vm && host.online && !host.needsReconcile && vm.state === 'SUSPENDED' && savedReachable(vm) && footprintFitsBesideOtherDesktops(before, vm, host.id)) {
      expect(desk.map((c) => (c as { vmId: string }).vmId)).toContain(vm.id);
    }
  }
  // Ground truth from the simulated agents: one place at a time, for desktops and batch.
  const where = new Map<string, string[]>();
  for (const [h, doms] of fleet.domains) for (const vm of doms.keys()) where.set(vm, [...(where.get(vm) ?? []), h]);
  for (const [vm, hosts] of where) expect({ vm, hosts: hosts.length <= 1 ? 'ok' : hosts }).toEqual({ vm, hosts: 'ok' });
  for (const [task, hosts] of fleet.taskRuns) expect({ task, runs: hosts.size <= 1 ? 'ok' : [...hosts] }).toEqual({ task, runs: 'ok' });
}

const RUNS = Number(process.env.CORE_PROPERTY_RUNS ?? 2000);

/** Runs random event sequences, checking every step; returns how often each action type came up. */
function runSequences(steps: fc.Arbitrary<Step[]>, numRuns: number, settings?: PlannerSettings): Map<string, number> {
  const seen = new Map<string, number>();
  fc.assert(
    fc.property(policyArb, tasksArb, steps, (policy, shapes, seq) => {
      const s0 = office(policy, shapes);
      const run: Run = { s: s0, fleet: new Fleet(s0), now: MONDAY_2AM, seq: 0, jobs: 0 };
      expect(checkInvariants(s0)).toEqual([]);
      for (const st of seq) {
        const ev = toEvent(run, st);
        if (!ev) continue;
        const p = plan(run.s, ev.event, settings, run.now);
        const next = applyPlan(run.s, p);
        for (const a of p.actions) {
          seen.set(a.type, (seen.get(a.type) ?? 0) + 1);
          if (a.type !== 'recordTransition' && a.type !== 'markLost' && a.type !== 'reportArrival') run.fleet.deliver(a);
        }
        if (ev.event.type === 'heartbeatLost' && !next.hosts[ev.event.hostId]!.online) run.fleet.partition(ev.event.hostId);
        if (ev.event.type === 'hostFenced') run.fleet.powerOff(ev.event.hostId);
        if (ev.event.type === 'hostBack') run.fleet.partitioned.delete(ev.event.hostId);
        checkStep(run.s, ev.event, p, next, run.fleet);
        run.s = next;
      }
    }),
    { numRuns },
  );
  if (process.env.CORE_PROPERTY_STATS) console.log(Object.fromEntries(seen));
  return seen;
}

/** The random runs must actually reach the interesting paths, or passing means little. */
function expectReached(seen: Map<string, number>, types: string[]): void {
  for (const type of types) expect({ type, seen: (seen.get(type) ?? 0) > 0 }).toEqual({ type, seen: true });
}

/** Batch churn: taps, answers, placement rounds, ends, submissions, PCs lost and back. */
const churnStep: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ k: fc.constant('presence' as const), host: fc.nat(3), present: fc.boolean() }) },
  { weight: 8, arbitrary: fc.record({ k: fc.constant('answer' as const), op: fc.nat(20), ok: fc.boolean() }) },
  { weight: 4, arbitrary: fc.constant({ k: 'tick' as const, timer: TIMERS.indexOf('placement') }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('finish' as const), task: fc.nat(20), ok: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('submit' as const), cores: fc.integer({ min: 1, max: 6 }), ckpt: fc.boolean(), prio: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('lose' as const), host: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('back' as const), host: fc.nat(3) }) },
);

describe('lifecycle invariants over random event sequences', () => {
  it('hold for every step of thousands of random runs of everything', () => {
    const seen = runSequences(fc.array(stepArb, { minLength: 5, maxLength: 80 }), RUNS);
    expectReached(seen, ['suspendDesktop', 'restoreDesktop', 'migrateDesktop', 'moveSavedState', 'checkpointBatch', 'stopBatch', 'placeTask', 'markLost', 'reconcileHost', 'hotplug', 'sleepHost', 'reportArrival']);
  }, 300_000);

  it('hold through batch churn: taps, checkpoints, resumes, host loss', () => {
    const seen = runSequences(fc.array(churnStep, { minLength: 10, maxLength: 80 }), Math.ceil(RUNS / 2));
    expectReached(seen, ['placeTask', 'resumeTask', 'moveCheckpoint', 'checkpointBatch', 'stopBatch', 'reconcileHost']);
  }, 300_000);

  it('are broken by a build that skips the fence wait: a task then runs on two PCs at once', () => {
    // The check must be able to fail: requeueing a lost PC's tasks at once (the test-only
    // switch) lets the cut-off PC keep running what is started elsewhere.
    const broken = { ...DEFAULT_SETTINGS, testOnlyTreatLostHostsAsFenced: true };
    let failure: unknown;
    try {
      runSequences(fc.array(churnStep, { minLength: 10, maxLength: 80 }), Math.ceil(RUNS / 2), broken);
    } catch (err) {
      failure = err;
    }
    // fast-check wraps the failed expectation; the task's two PCs are in its message.
    const cause = (failure as { cause?: unknown } | undefined)?.cause;
    expect(String(cause ?? failure)).toMatch(/runs/);
  }, 300_000);
});
