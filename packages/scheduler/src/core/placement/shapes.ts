import type { BatchJob, Resources } from '../types.js';
import { constraintKey } from './feasibility.js';

/**
 * Numbers task classes: tasks whose jobs have the same pool, label and rule constraints and
 * that need the same resources succeed or fail alike within one round (the fleet only fills
 * up during a round). Ids are dense from 0, so per-class state fits in plain arrays.
 *
 * A task costs a few numeric map lookups here, no string building: the constraint part is
 * worked out once per job.
 */
export class ShapeTable {
  private readonly constraintIdOfJob = new Map<string, number>();
  private readonly constraintIds = new Map<string, number>();
  /** constraint id → cores → memory → disk → gpus → shape id. */
  private readonly tree = new Map<number, Map<number, Map<number, Map<number, Map<number, number>>>>>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  idOf(job: BatchJob, need: Resources): number {
    let c = this.constraintIdOfJob.get(job.id);
    if (c === undefined) {
      const key = constraintKey(job);
      c = this.constraintIds.get(key);
      if (c === undefined) this.constraintIds.set(key, (c = this.constraintIds.size));
      this.constraintIdOfJob.set(job.id, c);
    }
    const byCores = child(this.tree, c);
    const byMemory = child(byCores, need.cores);
    const byDisk = child(byMemory, need.memoryMiB);
    let byGpus = byDisk.get(need.diskGiB);
    if (!byGpus) byDisk.set(need.diskGiB, (byGpus = new Map()));
    let id = byGpus.get(need.gpus);
    if (id === undefined) byGpus.set(need.gpus, (id = this.count++));
    return id;
  }
}

function child<V>(m: Map<number, Map<number, V>>, k: number): Map<number, V> {
  let c = m.get(k);
  if (!c) m.set(k, (c = new Map()));
  return c;
}
