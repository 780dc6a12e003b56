import type { BatchJob, BatchTask, Resources } from '../types.js';
import { MinHeap } from './heap.js';

/**
 * Tasks of one submitter with the same deadline and submission time: offered by task id.
 * The ids are sorted only when the group is first reached, so a round that fills the fleet
 * early never sorts the tasks it does not get to.
 */
interface Group {
  deadline: number;
  submittedAt: number;
  /** Indexes into the queue's task list. */
  members: number[];
  sorted: boolean;
}

interface SubmitterQueue {
  submitterId: string;
  /** By deadline, then submission time (earliest first); a strict order, groups are unique. */
  groups: Group[];
  group: number;
  member: number;
  share: number;
}

/**
 * The order tasks are offered to the fleet: strict priority levels (high first); inside a
 * level, dominant resource fairness between submitters (the one with the smallest dominant
 * share of the pool's batch capacity goes next); inside a submitter, earliest deadline first,
 * then oldest submission, then task id.
 *
 * Tasks are referred to by their index in `tasks` (with their job at the same index of `jobs`).
 */
export class FairQueue {
  private readonly levels: MinHeap<SubmitterQueue>[] = [];
  private level = 0;
  private readonly usage = new Map<string, { cores: number; memoryMiB: number }>();

  constructor(
    private readonly tasks: readonly BatchTask[],
    private readonly jobs: readonly BatchJob[],
    running: Iterable<{ submitterId: string; resources: Resources }>,
    private readonly total: { cores: number; memoryMiB: number },
  ) {
    for (const r of running) this.addUsage(r.submitterId, r.resources);
    // Tasks by job first (one map lookup per task), then jobs into levels and submitters.
    const byJob = new Map<string, { job: BatchJob; members: number[] }>();
    for (let i = 0; i < tasks.length; i++) {
      const job = jobs[i] as BatchJob;
      let entry = byJob.get(job.id);
      if (!entry) byJob.set(job.id, (entry = { job, members: [] }));
      entry.members.push(i);
    }
    const byLevel = new Map<number, Map<string, Group[]>>();
    for (const { job, members } of byJob.values()) {
      let subs = byLevel.get(job.priority);
      if (!subs) byLevel.set(job.priority, (subs = new Map()));
      let groups = subs.get(job.submitterId);
      if (!groups) subs.set(job.submitterId, (groups = []));
      groups.push({ deadline: job.deadline ?? Number.POSITIVE_INFINITY, submittedAt: job.submittedAt, members, sorted: false });
    }
    const less = (a: SubmitterQueue, b: SubmitterQueue) => a.share < b.share || (a.share === b.share && a.submitterId < b.submitterId);
    for (const priority of [...byLevel.keys()].sort((a, b) => b - a)) {
      const heap = new MinHeap<SubmitterQueue>(less);
      for (const [submitterId, groups] of byLevel.get(priority) ?? []) {
        heap.push({ submitterId, groups: mergeEqualGroups(groups), group: 0, member: 0, share: this.shareOf(submitterId) });
      }
      this.levels.push(heap);
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

  /** The submitter's next task, or -1 when it has none left. */
  private next(q: SubmitterQueue): number {
    const group = q.groups[q.group];
    if (!group) return -1;
    if (!group.sorted) {
      const tasks = this.tasks;
      group.members.sort((a, b) => ((tasks[a] as BatchTask).id < (tasks[b] as BatchTask).id ? -1 : 1));
      group.sorted = true;
    }
    const task = group.members[q.member] as number;
    if (++q.member === group.members.length) {
      q.group++;
      q.member = 0;
    }
    return task;
  }

  /**
   * Offers each task once, in order, until the queue is empty or `more()` says the round is
   * over; `tryPlace` says whether the task found a host.
   */
  drain(tryPlace: (task: number) => boolean, more: () => boolean): void {
    for (; this.level < this.levels.length; this.level++) {
      const heap = this.levels[this.level] as MinHeap<SubmitterQueue>;
      for (let q = heap.pop(); q; q = heap.pop()) {
        if (!more()) return;
        const i = this.next(q);
        if (tryPlace(i)) {
          const job = this.jobs[i] as BatchJob;
          this.addUsage(q.submitterId, (this.tasks[i] as BatchTask).resources);
          q.share = this.shareOf(job.submitterId);
        }
        if (q.group < q.groups.length) heap.push(q);
      }
    }
  }
}

/** Sorts a submitter's groups by deadline then submission time, merging groups equal in both. */
function mergeEqualGroups(groups: Group[]): Group[] {
  groups.sort((a, b) => a.deadline - b.deadline || a.submittedAt - b.submittedAt);
  const out: Group[] = [];
  for (const g of groups) {
    const last = out[out.length - 1];
    if (last && last.deadline === g.deadline && last.submittedAt === g.submittedAt) {
      for (const m of g.members) last.members.push(m);
    } else out.push(g);
  }
  return out;
}
