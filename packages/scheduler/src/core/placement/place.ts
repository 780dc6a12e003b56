import { batchRoom, hostAcceptsBatch } from '../capacity.js';
import { TASK_ACTIVE_STATES, TASK_YIELDING_STATES, type PlanDraft } from '../draft.js';
import { NO_RESOURCES } from '../resources.js';
import type { PlannerSettings } from '../settings.js';
import type { BatchJob, BatchTask, Host, Pool, Resources } from '../types.js';
import { CapacityIndex } from './capacity-index.js';
import { FairQueue } from './fair-queue.js';
import { constraintsHoldOn } from './feasibility.js';
import { scorePlacement } from './ranking.js';
import { seededRandom } from './rng.js';
import { ShapeTable } from './shapes.js';

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
 *
 * A task class (constraints and resource shape, see ShapeTable) that found no host is not
 * searched for again this round: capacity only shrinks while a round places. When every
 * class still queued has failed, the round ends without offering the rest one by one.
 */
export function placeBatch(draft: PlanDraft, settings: PlannerSettings): PlacementStats {
  const hosts: Host[] = [];
  const acceptingHosts: { host: Host; pool: Pool }[] = [];
  const indexOfHost = new Map<string, number>();
  const total = { cores: 0, memoryMiB: 0 };
  const pools = new Map<string, Pool | undefined>();
  for (const host of draft.all('hosts')) {
    let pool = pools.get(host.poolId);
    if (pool === undefined && !pools.has(host.poolId)) pools.set(host.poolId, (pool = draft.get('pools', host.poolId)));
    if (!pool || !hostAcceptsBatch(draft, host, pool)) continue;
    indexOfHost.set(host.id, hosts.length);
    hosts.push(host);
    acceptingHosts.push({ host, pool });
    total.cores += host.resources.cores;
    total.memoryMiB += host.resources.memoryMiB;
  }
  // GPU PCs sit in their own index so CPU-only work fills them last.
  const gpuIndex = new CapacityIndex(hosts.length);
  const cpuIndex = new CapacityIndex(hosts.length);
  const isGpuHost = new Uint8Array(hosts.length);
  for (let i = 0; i < acceptingHosts.length; i++) {
    const { host, pool } = acceptingHosts[i] as { host: Host; pool: Pool };
    if (host.resources.gpus > 0) isGpuHost[i] = 1;
    (isGpuHost[i] ? gpuIndex : cpuIndex).set(i, batchRoom(draft, host, pool));
  }
  const indexFor = (host: number): CapacityIndex => (isGpuHost[host] ? gpuIndex : cpuIndex);

  // One pass over the tasks: what is queued, what runs (fair share), and where each job's
  // tasks run (spread). Hosts that take no batch now are never candidates, so their tasks
  // are not counted for spread.
  const pendingTasks: BatchTask[] = [];
  const pendingJobs: BatchJob[] = [];
  const running: { submitterId: string; resources: Resources }[] = [];
  const jobOnHost = new Map<string, Map<number, number>>();
  const addOnHost = (jobId: string, host: number): void => {
    let perHost = jobOnHost.get(jobId);
    if (!perHost) jobOnHost.set(jobId, (perHost = new Map()));
    perHost.set(host, (perHost.get(host) ?? 0) + 1);
  };
  let unreachable = 0;
  for (const task of draft.all('tasks')) {
    const state = task.state;
    if (state === 'QUEUED' || state === 'CHECKPOINTED') {
      const job = draft.get('jobs', task.jobId);
      if (!job || job.cancelled) continue;
      if (checkpointReachable(draft, task)) {
        pendingTasks.push(task);
        pendingJobs.push(job);
      } else unreachable++;
    } else if (TASK_ACTIVE_STATES.has(state) || TASK_YIELDING_STATES.has(state)) {
      const job = draft.get('jobs', task.jobId);
      if (!job) continue;
      running.push({ submitterId: job.submitterId, resources: task.resources });
      if (state === 'RUNNING' && task.hostId) {
        const i = indexOfHost.get(task.hostId);
        if (i !== undefined) addOnHost(task.jobId, i);
      }
    }
  }
  if (unreachable > 0) draft.reason('checkpointUnreachable', `${unreachable} task(s) wait for the PC holding their checkpoint to come back`);

  // Task classes and how many queued tasks of each are still to be offered. Tasks whose
  // checkpoint lies on a PC always get that PC looked at, so they are never skipped.
  const shapes = new ShapeTable();
  const shapeOfTask = new Int32Array(pendingTasks.length);
  const remainingOfShape: number[] = [];
  let live = 0;
  for (let i = 0; i < pendingTasks.length; i++) {
    const task = pendingTasks[i] as BatchTask;
    const s = shapes.idOf(pendingJobs[i] as BatchJob, task.resources);
    shapeOfTask[i] = s;
    while (remainingOfShape.length <= s) remainingOfShape.push(0);
    if (task.checkpoint?.kind !== 'local') remainingOfShape[s] = (remainingOfShape[s] as number) + 1;
    live++;
  }
  const failedShape = new Uint8Array(shapes.size);

  const random = seededRandom(draft.event.id);
  const stats: PlacementStats = { placed: 0, unplaced: 0, probes: 0 };
  const queue = new FairQueue(pendingTasks, pendingJobs, running, total);

  // Per-task search state, shared by the scan callback so no closure is made per task.
  const candidates: number[] = [];
  let want = 0;
  let job: BatchJob = pendingJobs[0] as BatchJob;
  let need: Resources = NO_RESOURCES;
  let scanned: CapacityIndex = cpuIndex;
  const collect = (host: number): boolean => {
    if (scanned.fits(host, need) && constraintsHoldOn(job, hosts[host] as Host)) candidates.push(host);
    return candidates.length < want;
  };

  const tryPlace = (i: number): boolean => {
    const task = pendingTasks[i] as BatchTask;
    job = pendingJobs[i] as BatchJob;
    need = task.resources;
    const cp = task.checkpoint;
    const shape = shapeOfTask[i] as number;
    if (cp?.kind !== 'local') {
      remainingOfShape[shape] = (remainingOfShape[shape] as number) - 1;
      // Counted out of `live` when the class failed.
      if (failedShape[shape]) return false;
    }
    live--;
    candidates.length = 0;
    // Where the checkpoint lies is always a candidate when it is feasible.
    if (cp?.kind === 'local') {
      const h = indexOfHost.get(cp.hostId);
      if (h !== undefined && indexFor(h).fits(h, need) && constraintsHoldOn(job, hosts[h] as Host)) candidates.push(h);
    }
    want = candidates.length + settings.candidatesPerTask;
    if (need.gpus > 0) {
      scanned = gpuIndex;
      stats.probes += gpuIndex.scan(need.cores, random, settings.probeLimit, collect);
    } else {
      scanned = cpuIndex;
      stats.probes += cpuIndex.scan(need.cores, random, settings.probeLimit, collect);
      if (candidates.length === 0) {
        scanned = gpuIndex;
        stats.probes += gpuIndex.scan(need.cores, random, settings.probeLimit, collect);
      }
    }
    if (candidates.length === 0) {
      if (!failedShape[shape]) {
        failedShape[shape] = 1;
        live -= remainingOfShape[shape] as number;
      }
      return false;
    }
    const sameJob = jobOnHost.get(job.id);
    let best = candidates[0] as number;
    let bestScore = Number.NEGATIVE_INFINITY;
    for (const c of candidates) {
      const host = hosts[c] as Host;
      const index = indexFor(c);
      const here = cp?.kind === 'local' && cp.hostId === host.id;
      const s = scorePlacement(host.resources, index.freeCores(c), index.freeMemoryMiB(c), need, sameJob?.get(c) ?? 0, here, settings);
      if (s > bestScore) {
        bestScore = s;
        best = c;
      }
    }
    const host = hosts[best] as Host;
    const rule = 'batch.placement';
    const generation = task.generation + 1;
    draft.update('tasks', task.id, { state: 'RUNNING', hostId: host.id, generation }, rule);
    if (task.state === 'CHECKPOINTED' && cp?.kind === 'local' && cp.hostId !== host.id) {
      // A checkpoint on another PC's disk goes to this one first; the resume follows the move (see results).
      draft.command({ type: 'moveCheckpoint', taskId: task.id, hostId: cp.hostId, fromHostId: cp.hostId, toHostId: host.id, generation }, rule);
    } else if (task.state === 'CHECKPOINTED' && cp) draft.command({ type: 'resumeTask', taskId: task.id, hostId: host.id, generation, resources: need, from: cp }, rule);
    else draft.command({ type: 'placeTask', taskId: task.id, hostId: host.id, generation, resources: need }, rule);
    indexFor(best).take(best, need);
    addOnHost(job.id, best);
    stats.placed++;
    return true;
  };
  queue.drain(tryPlace, () => live > 0 && (cpuIndex.hostCount > 0 || gpuIndex.hostCount > 0));
  stats.unplaced = pendingTasks.length - stats.placed;
  if (stats.unplaced > 0) draft.reason('noFeasibleHost', `${stats.unplaced} task(s) found no feasible PC this round`);
  return stats;
}
