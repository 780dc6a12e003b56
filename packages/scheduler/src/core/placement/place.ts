import { batchRoom, hostAcceptsBatch } from '../capacity.js';
import { TASK_ACTIVE_STATES, TASK_YIELDING_STATES, type PlanDraft } from '../draft.js';
import { subtractResources } from '../resources.js';
import type { PlannerSettings } from '../settings.js';
import type { BatchJob, BatchTask, Host, Resources } from '../types.js';
import { CapacityIndex } from './capacity-index.js';
import { FairQueue, type PendingTask } from './fair-queue.js';
import { constraintKey, shapeKey, taskFeasibleOn } from './feasibility.js';
import { scorePlacement } from './ranking.js';
import { seededRandom } from './rng.js';

export interface PlacementStats {
  placed: number;
  unplaced: number;
  probes: number;
}

function checkpointReachable(draft: PlanDraft, task: BatchTask): boolean {
  const cp = task.checkpoint;
  if (!cp || cp.kind === 'shared') return true;
  const h = draft.get('hosts', cp.hostId);
  return !!h && h.online && !h.asleep && !h.needsReconcile;
}

/**
 * One placement round: feasibility (which hosts may take batch now, and how much) is
 * computed once into capacity indexes; tasks are then offered in fair-queue order, each
 * looking at a bounded number of the tightest hosts and taking the best-ranked of a few.
 */
export function placeBatch(draft: PlanDraft, settings: PlannerSettings): PlacementStats {
  const hosts: Host[] = [];
  const gpuIndex = new CapacityIndex();
  const cpuIndex = new CapacityIndex();
  const indexOfHost = new Map<string, number>();
  const total = { cores: 0, memoryMiB: 0 };
  for (const host of draft.all('hosts')) {
    const pool = draft.get('pools', host.poolId);
    if (!pool || !hostAcceptsBatch(draft, host, pool)) continue;
    const i = hosts.length;
    hosts.push(host);
    indexOfHost.set(host.id, i);
    total.cores += host.resources.cores;
    total.memoryMiB += host.resources.memoryMiB;
    // GPU PCs sit in their own index so CPU-only work fills them last.
    (host.resources.gpus > 0 ? gpuIndex : cpuIndex).set(i, batchRoom(draft, host, pool));
  }

  const pending: PendingTask[] = [];
  const running: { submitterId: string; resources: Resources }[] = [];
  let unreachable = 0;
  for (const task of draft.all('tasks')) {
    const job = draft.get('jobs', task.jobId);
    if (!job) continue;
    if (TASK_ACTIVE_STATES.has(task.state) || TASK_YIELDING_STATES.has(task.state)) running.push({ submitterId: job.submitterId, resources: task.resources });
    else if ((task.state === 'QUEUED' || task.state === 'CHECKPOINTED') && !job.cancelled) {
      if (checkpointReachable(draft, task)) pending.push({ task, job });
      else unreachable++;
    }
  }
  if (unreachable > 0) draft.reason('checkpointUnreachable', `${unreachable} task(s) wait for the PC holding their checkpoint to come back`);

  const random = seededRandom(draft.event.id);
  const failedShapes = new Set<string>();
  const stats: PlacementStats = { placed: 0, unplaced: 0, probes: 0 };
  const queue = new FairQueue(pending, running, total);

  const constraintKeys = new Map<string, string>();
  const shapeOf = (job: BatchJob, need: Resources): string => {
    let ck = constraintKeys.get(job.id);
    if (ck === undefined) constraintKeys.set(job.id, (ck = constraintKey(job)));
    return shapeKey(ck, need);
  };
  // Tasks of each job per feasible host (by index), for the spread penalty, kept up to date as
  // we place. Hosts that take no batch now are never candidates, so their tasks are not counted.
  const jobOnHost = new Map<string, Map<number, number>>();
  const countOnHost = (jobId: string, host: number): number => jobOnHost.get(jobId)?.get(host) ?? 0;
  const addOnHost = (jobId: string, host: number): void => {
    let perHost = jobOnHost.get(jobId);
    if (!perHost) jobOnHost.set(jobId, (perHost = new Map()));
    perHost.set(host, (perHost.get(host) ?? 0) + 1);
  };
  for (const task of draft.all('tasks')) {
    if (task.state !== 'RUNNING' || !task.hostId) continue;
    const i = indexOfHost.get(task.hostId);
    if (i !== undefined) addOnHost(task.jobId, i);
  }

  // Per-task search state, shared by the scan callback so no closure is made per task.
  const candidates: { host: number; free: Resources }[] = [];
  let want = 0;
  let current: PendingTask | null = null;
  const collect = (host: number, free: Resources): boolean => {
    const p = current as PendingTask;
    if (taskFeasibleOn(p.job, p.task.resources, hosts[host] as Host, free)) candidates.push({ host, free });
    return candidates.length < want;
  };

  queue.drain((pending) => {
    if (cpuIndex.hostCount === 0 && gpuIndex.hostCount === 0) return 'stop';
    const { task, job } = pending;
    const need = task.resources;
    const cp = task.checkpoint;
    // Shape keys are only built once some shape has failed (a roomy fleet never needs them).
    if (failedShapes.size > 0 && cp?.kind !== 'local' && failedShapes.has(shapeOf(job, need))) return false;
    candidates.length = 0;
    current = pending;
    // Where the checkpoint lies is always a candidate when it is feasible.
    if (cp?.kind === 'local') {
      const i = indexOfHost.get(cp.hostId);
      const free = i === undefined ? undefined : (gpuIndex.free.get(i) ?? cpuIndex.free.get(i));
      if (i !== undefined && free && taskFeasibleOn(job, need, hosts[i] as Host, free)) candidates.push({ host: i, free });
    }
    want = candidates.length + settings.candidatesPerTask;
    if (need.gpus > 0) stats.probes += gpuIndex.scan(need.cores, random, settings.probeLimit, collect);
    else {
      stats.probes += cpuIndex.scan(need.cores, random, settings.probeLimit, collect);
      if (candidates.length === 0) stats.probes += gpuIndex.scan(need.cores, random, settings.probeLimit, collect);
    }
    if (candidates.length === 0) {
      failedShapes.add(shapeOf(job, need));
      return false;
    }
    let best = candidates[0] as { host: number; free: Resources };
    let bestScore = Number.NEGATIVE_INFINITY;
    for (const c of candidates) {
      const host = hosts[c.host] as Host;
      const here = cp?.kind === 'local' && cp.hostId === host.id;
      const s = scorePlacement(host.resources, c.free, need, countOnHost(job.id, c.host), here, settings);
      if (s > bestScore) {
        bestScore = s;
        best = c;
      }
    }
    const host = hosts[best.host] as Host;
    const rule = 'batch.placement';
    const generation = task.generation + 1;
    draft.update('tasks', task.id, { state: 'RUNNING', hostId: host.id, generation }, rule);
    if (task.state === 'CHECKPOINTED' && cp?.kind === 'local' && cp.hostId !== host.id) {
      // A checkpoint on another PC's disk goes to this one first; the resume follows the move (see results).
      draft.command({ type: 'moveCheckpoint', taskId: task.id, hostId: cp.hostId, fromHostId: cp.hostId, toHostId: host.id, generation }, rule);
    } else if (task.state === 'CHECKPOINTED' && cp) draft.command({ type: 'resumeTask', taskId: task.id, hostId: host.id, generation, resources: need, from: cp }, rule);
    else draft.command({ type: 'placeTask', taskId: task.id, hostId: host.id, generation, resources: need }, rule);
    (host.resources.gpus > 0 ? gpuIndex : cpuIndex).set(best.host, subtractResources(best.free, need));
    addOnHost(job.id, best.host);
    stats.placed++;
    return true;
  });
  stats.unplaced = pending.length - stats.placed;
  if (stats.unplaced > 0) draft.reason('noFeasibleHost', `${stats.unplaced} task(s) found no feasible PC this round`);
  return stats;
}
