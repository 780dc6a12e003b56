// Builders for planning-core scenarios: small, readable snapshots with sane defaults.
import { applyPlan, defaultPolicy, plan, type Action, type BatchJob, type BatchTask, type Command, type DesktopVm, type Host, type Plan, type PoolPolicy, type Resources, type SchedulerEvent, type Snapshot, type User } from '../src/core/index.js';

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;
/** Monday 23 November 2026, 02:00 UTC: inside the default night window, outside office hours. */
export const MONDAY_2AM = Date.UTC(2026, 10, 23, 2, 0);
/** Monday 10:00 UTC: office hours. */
export const MONDAY_10AM = Date.UTC(2026, 10, 23, 10, 0);

export function res(cores: number, memoryMiB: number, diskGiB = 0, gpus = 0): Resources {
  return { cores, memoryMiB, diskGiB, gpus };
}

export class World {
  readonly s: Snapshot = { pools: {}, hosts: {}, vms: {}, users: {}, jobs: {}, tasks: {}, operations: {} };

  pool(id: string, policy: Partial<PoolPolicy> = {}): this {
    this.s.pools[id] = { id, policy: defaultPolicy(policy), preStageBudget: { localDate: '1970-01-01', usedCoreMs: 0 } };
    return this;
  }

  host(id: string, h: Partial<Host> = {}): this {
    this.s.hosts[id] = {
      id,
      poolId: 'p1',
      resources: res(8, 16384, 200),
      labels: {},
      online: true,
      needsReconcile: false,
      presence: 'idle',
      presenceSince: 0,
      draining: false,
      asleep: false,
      ownerUserId: null,
      ...h,
    };
    return this;
  }

  user(id: string, u: Partial<User> = {}): this {
    this.s.users[id] = { id, poolId: 'p1', homeHostId: null, arrivals: [], preStage: null, ...u };
    return this;
  }

  /** A person with a PC of their own and a desktop on it. */
  person(userId: string, hostId: string, vm: Partial<DesktopVm> = {}, host: Partial<Host> = {}): this {
    this.host(hostId, { ownerUserId: userId, ...host });
    this.user(userId, { homeHostId: hostId });
    return this.desktop(`vm-${userId}`, userId, { hostId, ...vm });
  }

  desktop(id: string, ownerUserId: string, vm: Partial<DesktopVm> = {}): this {
    this.s.vms[id] = {
      id,
      ownerUserId,
      poolId: 'p1',
      state: 'RUNNING',
      pinned: false,
      hostId: null,
      sourceHostId: null,
      savedState: null,
      generation: 1,
      size: res(2, 4096, 0),
      augmented: null,
      desiredHostId: null,
      ...vm,
    };
    return this;
  }

  job(id: string, j: Partial<BatchJob> = {}): this {
    this.s.jobs[id] = {
      id,
      poolId: null,
      submitterId: 'sub-a',
      priority: 50,
      deadline: null,
      checkpointable: true,
      maxRetries: 2,
      submittedAt: 0,
      constraints: { labels: {} },
      cancelled: false,
      ...j,
    };
    return this;
  }

  task(id: string, jobId: string, t: Partial<BatchTask> = {}): this {
    this.s.tasks[id] = {
      id,
      jobId,
      resources: res(2, 2048, 1),
      state: 'QUEUED',
      hostId: null,
      generation: 0,
      attempts: 0,
      restarts: 0,
      checkpoint: null,
      afterStop: null,
      ...t,
    };
    return this;
  }
}

export function step(s: Snapshot, event: SchedulerEvent, now: number): { plan: Plan; next: Snapshot } {
  const p = plan(s, event, undefined, now);
  return { plan: p, next: applyPlan(s, p) };
}

export function commands<T extends Command['type']>(p: Plan, type: T): Extract<Command, { type: T }>[] {
  return p.actions.filter((a: Action): a is Extract<Command, { type: T }> => a.type === type);
}

/** Answers every in-flight operation of `type` (for `subjectId`) with `outcome`, in key order. */
export function answer(s: Snapshot, type: Command['type'], subjectId: string, outcome: 'succeeded' | 'failed', now: number, extra: Partial<Extract<SchedulerEvent, { type: 'operationResult' }>> = {}): { plan: Plan; next: Snapshot } {
  const op = Object.values(s.operations).find((o) => o.type === type && o.subject.id === subjectId);
  if (!op) throw new Error(`no in-flight ${type} for ${subjectId}; in flight: ${Object.keys(s.operations).join(', ')}`);
  return step(s, { id: `res-${op.id}`, type: 'operationResult', operationId: op.id, outcome, generation: op.generation, ...extra }, now);
}
