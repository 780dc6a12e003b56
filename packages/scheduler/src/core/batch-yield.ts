import { desktopRoom } from './capacity.js';
import type { PlanDraft } from './draft.js';
import { fits, scaleCompute } from './resources.js';
import type { BatchTask, Command, Host, Resources } from './types.js';

/** Lowest priority first, then the most recently submitted: they lose the least. */
function yieldOrder(draft: PlanDraft, tasks: BatchTask[]): BatchTask[] {
  const prio = (t: BatchTask) => draft.get('jobs', t.jobId)?.priority ?? 0;
  const submitted = (t: BatchTask) => draft.get('jobs', t.jobId)?.submittedAt ?? 0;
  return [...tasks].sort((a, b) => prio(a) - prio(b) || submitted(b) - submitted(a) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * Tells one running batch task to get out of the way: checkpoint if its job allows it,
 * otherwise stop and requeue it (it will start over from zero, counted once in `restarts`).
 */
export function yieldTask(draft: PlanDraft, task: BatchTask, rule: string): Command {
  const job = draft.get('jobs', task.jobId);
  const host = task.hostId ? draft.get('hosts', task.hostId) : undefined;
  const pool = host ? draft.get('pools', host.poolId) : undefined;
  if (!task.hostId || !host || !pool) throw new Error(`Planning bug: yield of task ${task.id} that is not on a known host`);
  const generation = task.generation + 1;
  if (job?.checkpointable) {
    const saveTo = pool.policy.storageMode === 'shared' ? ({ kind: 'shared' } as const) : ({ kind: 'local', hostId: host.id } as const);
    draft.update('tasks', task.id, { state: 'CHECKPOINTING', generation }, rule);
    return draft.command({ type: 'checkpointBatch', taskId: task.id, hostId: host.id, generation, graceMs: pool.policy.checkpointGraceMs, saveTo }, rule);
  }
  draft.update('tasks', task.id, { state: 'STOPPING', generation, afterStop: 'requeue' }, rule);
  return draft.command({ type: 'stopBatch', taskId: task.id, hostId: host.id, generation, then: 'requeue' }, rule);
}

export interface YieldOutcome {
  ok: boolean;
  /** Keys of the yield commands, for the desktop command to run after. */
  keys: string[];
}

/**
 * Makes room for `need` on `host` for a person's desktop: yields running batch until it
 * fits, and, since the owner is (about to be) present, until batch is within the pool's
 * share. Yields nothing when even all batch gone would not be enough.
 */
export function makeRoomForDesktop(draft: PlanDraft, host: Host, need: Resources, ownerPresent: boolean, rule: string): YieldOutcome {
  const load = draft.loadOf(host.id);
  const withoutBatch = {
    cores: host.resources.cores - load.desktops.cores,
    memoryMiB: host.resources.memoryMiB - load.desktops.memoryMiB,
    diskGiB: host.resources.diskGiB - load.desktops.diskGiB,
    gpus: host.resources.gpus - load.desktops.gpus,
  };
  if (!fits(need, withoutBatch)) return { ok: false, keys: [] };
  const keys: string[] = [];
  for (const task of yieldOrder(draft, draft.tasksOnHost(host.id).filter((t) => t.state === 'RUNNING'))) {
    const withinShare = !ownerPresent || batchWithinShare(draft, host);
    if (fits(need, desktopRoom(draft, host)) && withinShare) break;
    keys.push(yieldTask(draft, task, rule).key);
  }
  return { ok: true, keys };
}

function batchWithinShare(draft: PlanDraft, host: Host): boolean {
  const pool = draft.get('pools', host.poolId);
  if (!pool) return true;
  const cap = scaleCompute(host.resources, pool.policy.maxBatchShareWhileOwnerPresent);
  const active = draft.loadOf(host.id).batchActive;
  return active.cores <= cap.cores && active.memoryMiB <= cap.memoryMiB;
}

/** Owner just became present: batch above the pool's share yields at once. */
export function enforceOwnerShare(draft: PlanDraft, host: Host, rule: string): string[] {
  const keys: string[] = [];
  for (const task of yieldOrder(draft, draft.tasksOnHost(host.id).filter((t) => t.state === 'RUNNING'))) {
    if (batchWithinShare(draft, host)) break;
    keys.push(yieldTask(draft, task, rule).key);
  }
  return keys;
}

/** Every running batch task on the host yields (morning drain, pre-staging on a full PC). */
export function yieldAllBatch(draft: PlanDraft, host: Host, rule: string): string[] {
  return yieldOrder(draft, draft.tasksOnHost(host.id).filter((t) => t.state === 'RUNNING')).map((t) => yieldTask(draft, t, rule).key);
}
