import type { Resources } from '../types.js';

/**
 * Hosts bucketed by free cores, so the tightest hosts that can take a task are found
 * without looking at the rest of the fleet. Moving a host between buckets is O(1)
 * (swap-remove with a position table).
 */
export class CapacityIndex {
  private readonly buckets: number[][] = [];
  private readonly bucketOf = new Map<number, number>();
  private readonly slotOf = new Map<number, number>();
  readonly free = new Map<number, Resources>();

  get hostCount(): number {
    return this.free.size;
  }

  set(host: number, free: Resources): void {
    this.remove(host);
    if (free.cores <= 0 || free.memoryMiB <= 0) return;
    const b = Math.floor(free.cores);
    while (this.buckets.length <= b) this.buckets.push([]);
    const bucket = this.buckets[b] as number[];
    this.slotOf.set(host, bucket.length);
    this.bucketOf.set(host, b);
    bucket.push(host);
    this.free.set(host, free);
  }

  remove(host: number): void {
    const b = this.bucketOf.get(host);
    if (b === undefined) return;
    const bucket = this.buckets[b] as number[];
    const slot = this.slotOf.get(host) as number;
    const last = bucket.pop() as number;
    if (last !== host) {
      bucket[slot] = last;
      this.slotOf.set(last, slot);
    }
    this.bucketOf.delete(host);
    this.slotOf.delete(host);
    this.free.delete(host);
  }

  /**
   * Visits hosts with at least `minCores` free, tightest bucket first, each bucket from a
   * random offset; stops when `visit` returns false or `probeLimit` hosts were seen.
   */
  scan(minCores: number, random: () => number, probeLimit: number, visit: (host: number, free: Resources) => boolean): number {
    let probes = 0;
    for (let b = Math.max(0, Math.ceil(minCores)); b < this.buckets.length; b++) {
      const bucket = this.buckets[b] as number[];
      const n = bucket.length;
      if (n === 0) continue;
      const start = Math.floor(random() * n);
      for (let i = 0; i < n; i++) {
        const host = bucket[(start + i) % n] as number;
        probes++;
        if (!visit(host, this.free.get(host) as Resources)) return probes;
        if (probes >= probeLimit) return probes;
      }
    }
    return probes;
  }
}
