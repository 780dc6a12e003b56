import type { BatchJob, BatchTask, Resources } from '../types.js';
import { MinHeap } from './heap.js';

export interface PendingTask {
  task: BatchTask;
  job: BatchJob;
}

/** A pending task with its order keys, computed once. */
interface Keyed {
  p: PendingTask;
  deadline: number;
  submittedAt: number;
  id: string;
}

const byDeadlineThenAge = (a: Keyed, b: Keyed): boolean =>
  a.deadline !== b.deadline ? a.deadline < b.deadline : a.submittedAt !== b.submittedAt ? a.submittedAt < b.submittedAt : a.id < b.id;

interface SubmitterQueue {
  submitterId: string;
  /**
   * Earliest deadline first, then oldest, then by id (a strict total order). A heap rather than
   * a sorted list: a round that fills the fleet early offers only a few of 100k queued tasks,
   * and pays O(log n) per task offered instead of sorting all of them.
   */
  tasks: MinHeap<Keyed>;
  share: number;
}

/**
 * The order tasks are offered to the fleet: strict priority levels (high first); inside a
 * level, dominant resource fairness between submitters (the one with the smallest dominant
 * share of the pool's batch capacity goes next); inside a submitter, earliest deadline first.
 */
export class FairQueue {
  private readonly levels: { priority: number; heap: MinHeap<SubmitterQueue> }[] = [];
  private level = 0;
  private readonly usage = new Map<string, { cores: number; memoryMiB: number }>();

  constructor(
    pending: PendingTask[],
    running: { submitterId: string; resources: Resources }[],
    private readonly total: { cores: number; memoryMiB: number },
  ) {
    for (const r of running) this.addUsage(r.submitterId, r.resources);
    const byLevel = new Map<number, Map<string, PendingTask[]>>();
    for (const p of pending) {
      let subs = byLevel.get(p.job.priority);
      if (!subs) byLevel.set(p.job.priority, (subs = new Map()));
      let list = subs.get(p.job.submitterId);
      if (!list) subs.set(p.job.submitterId, (list = []));
      list.push(p);
    }
    const less = (a: SubmitterQueue, b: SubmitterQueue) => a.share < b.share || (a.share === b.share && a.submitterId < b.submitterId);
    for (const priority of [...byLevel.keys()].sort((a, b) => b - a)) {
      const heap = new MinHeap<SubmitterQueue>(less);
      for (const [submitterId, tasks] of byLevel.get(priority) ?? []) {
        const ordered = new MinHeap<Keyed>(byDeadlineThenAge);
        for (const p of tasks) ordered.push({ p, deadline: p.job.deadline ?? Number.POSITIVE_INFINITY, submittedAt: p.job.submittedAt, id: p.task.id });
        heap.push({ submitterId, tasks: ordered, share: this.shareOf(submitterId) });
      }
      this.levels.push({ priority, heap });
    }
  }

  shareOf(submitterId: string): number {
    const u = this.usage.get(submitterId);
    if (!u) return 0;
    return Math.max(this.total.cores > 0 ? u.cores / this.total.cores : 0, this.total.memoryMiB > 0 ? u.memoryMiB / this.total.memoryMiB : 0);
  }

  private addUsage(submitterId: string, r: Resources): void {
    const u = this.usage.get(submitterId) ?? { cores: 0, memoryMiB: 0 };
    u.cores += r.cores;
    u.memoryMiB += r.memoryMiB;
    this.usage.set(submitterId, u);
  }

  /**
   * Offers each pending task once; `tryPlace` says whether it found a host, or 'stop' when
   * nothing more can be placed this round (the fleet is full).
   */
  drain(tryPlace: (p: PendingTask) => boolean | 'stop'): void {
    for (; this.level < this.levels.length; this.level++) {
      const { heap } = this.levels[this.level] as { heap: MinHeap<SubmitterQueue> };
      for (let q = heap.pop(); q; q = heap.pop()) {
        const p = (q.tasks.pop() as Keyed).p;
        const placed = tryPlace(p);
        if (placed === 'stop') return;
        if (placed) {
          this.addUsage(q.submitterId, p.task.resources);
          q.share = this.shareOf(q.submitterId);
        }
        if (q.tasks.size > 0) heap.push(q);
      }
    }
  }
}
