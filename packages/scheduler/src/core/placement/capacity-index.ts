import type { Resources } from '../types.js';

/**
 * Hosts (numbered 0..capacity-1 by the caller) bucketed by whole free cores, so the tightest
 * hosts that can take a task are found without looking at the rest of the fleet. Free room
 * lives in typed arrays and hosts move between buckets by swap-remove with a position table:
 * a placement changes a few numbers and allocates nothing.
 */
export class CapacityIndex {
  private readonly buckets: number[][] = [];
  /** Bucket of each host, -1 when the host is not in this index. */
  private readonly bucketOf: Int32Array;
  private readonly slotOf: Int32Array;
  private readonly cores: Float64Array;
  private readonly memoryMiB: Float64Array;
  private readonly diskGiB: Float64Array;
  private readonly gpus: Float64Array;
  private count = 0;

  constructor(capacity: number) {
    this.bucketOf = new Int32Array(capacity).fill(-1);
    this.slotOf = new Int32Array(capacity);
    this.cores = new Float64Array(capacity);
    this.memoryMiB = new Float64Array(capacity);
    this.diskGiB = new Float64Array(capacity);
    this.gpus = new Float64Array(capacity);
  }

  get hostCount(): number {
    return this.count;
  }

  has(host: number): boolean {
    return this.bucketOf[host] !== -1;
  }

  /** Puts `host` in with `free` room; a host with no cores or memory left is kept out. */
  set(host: number, free: Resources): void {
    this.cores[host] = free.cores;
    this.memoryMiB[host] = free.memoryMiB;
    this.diskGiB[host] = free.diskGiB;
    this.gpus[host] = free.gpus;
    this.rebucket(host);
  }

  /** Takes `need` from the host's free room (it must be in the index and fit). */
  take(host: number, need: Resources): void {
    this.cores[host] = (this.cores[host] as number) - need.cores;
    this.memoryMiB[host] = (this.memoryMiB[host] as number) - need.memoryMiB;
    this.diskGiB[host] = (this.diskGiB[host] as number) - need.diskGiB;
    this.gpus[host] = (this.gpus[host] as number) - need.gpus;
    this.rebucket(host);
  }

  /** Every dimension of `need` fits in the host's free room (false for hosts not in the index). */
  fits(host: number, need: Resources): boolean {
    return (
      this.bucketOf[host] !== -1 &&
      need.cores <= (this.cores[host] as number) &&
      need.memoryMiB <= (this.memoryMiB[host] as number) &&
      need.diskGiB <= (this.diskGiB[host] as number) &&
      need.gpus <= (this.gpus[host] as number)
    );
  }

  freeCores(host: number): number {
    return this.cores[host] as number;
  }

  freeMemoryMiB(host: number): number {
    return this.memoryMiB[host] as number;
  }

  /** A copy of the host's free room (for tests and diagnostics; the hot path reads numbers). */
  freeOf(host: number): Resources | undefined {
    if (this.bucketOf[host] === -1) return undefined;
    return { cores: this.cores[host] as number, memoryMiB: this.memoryMiB[host] as number, diskGiB: this.diskGiB[host] as number, gpus: this.gpus[host] as number };
  }

  remove(host: number): void {
    const b = this.bucketOf[host] as number;
    if (b === -1) return;
    const bucket = this.buckets[b] as number[];
    const slot = this.slotOf[host] as number;
    const last = bucket.pop() as number;
    if (last !== host) {
      bucket[slot] = last;
      this.slotOf[last] = slot;
    }
    this.bucketOf[host] = -1;
    this.count--;
  }

  private rebucket(host: number): void {
    const cores = this.cores[host] as number;
    const wanted = cores <= 0 || (this.memoryMiB[host] as number) <= 0 ? -1 : Math.floor(cores);
    const now = this.bucketOf[host] as number;
    if (wanted === now) return;
    this.remove(host);
    if (wanted === -1) return;
    while (this.buckets.length <= wanted) this.buckets.push([]);
    const bucket = this.buckets[wanted] as number[];
    this.slotOf[host] = bucket.length;
    this.bucketOf[host] = wanted;
    bucket.push(host);
    this.count++;
  }

  /**
   * Visits hosts with at least `minCores` free, tightest bucket first, each bucket from a
   * random offset; stops when `visit` returns false or `probeLimit` hosts were seen.
   * Returns the number of hosts visited.
   */
  scan(minCores: number, random: () => number, probeLimit: number, visit: (host: number) => boolean): number {
    let probes = 0;
    for (let b = Math.max(0, Math.ceil(minCores)); b < this.buckets.length; b++) {
      const bucket = this.buckets[b] as number[];
      const n = bucket.length;
      if (n === 0) continue;
      let i = Math.floor(random() * n);
      for (let seen = 0; seen < n; seen++) {
        const host = bucket[i] as number;
        probes++;
        if (!visit(host)) return probes;
        if (probes >= probeLimit) return probes;
        if (++i === n) i = 0;
      }
    }
    return probes;
  }
}
