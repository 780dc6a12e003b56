// One accelerated clock for everything in the demo process: the API, the scheduler, the
// agents and the simulated hypervisors all read it, so their timestamps agree.
import type { Clock as AgentClock } from '@deskpool/agent';
import type { Clock as ApiClock } from '@deskpool/api';
import type { SimClock } from '@deskpool/kvm-driver';
import type { Clock as SchedulerClock } from '@deskpool/scheduler';

let nextHandle = 1;

/** Simulated time = start + real time elapsed × speed. */
export class AcceleratedTime implements AgentClock, SimClock, SchedulerClock {
  /** null until begin(): setting the office up takes no simulated time. */
  private realOrigin: number | null = null;
  private readonly timers = new Map<number, NodeJS.Timeout>();
  private readonly pending = new Map<number, { fn: () => void; ms: number }>();

  constructor(
    readonly startMs: number,
    readonly speed: number,
  ) {
    if (!(speed > 0)) throw new RangeError('speed must be positive');
  }

  /** Starts the clock running (and the timers set while it stood still). */
  begin(): void {
    if (this.realOrigin !== null) return;
    this.realOrigin = performance.now();
    for (const [id, t] of this.pending) this.schedule(id, t.fn, t.ms);
    this.pending.clear();
  }

  now(): number {
    if (this.realOrigin === null) return this.startMs;
    return this.startMs + Math.floor((performance.now() - this.realOrigin) * this.speed);
  }

  setTimeout(fn: () => void, ms: number): { id: number } {
    const id = nextHandle++;
    // Before begin() the clock stands still: a timer counts from the moment it starts running,
    // so a large office can connect its agents without simulated time passing.
    if (this.realOrigin === null) {
      this.pending.set(id, { fn, ms });
      return { id };
    }
    this.schedule(id, fn, ms);
    return { id };
  }

  private schedule(id: number, fn: () => void, ms: number): void {
    const timer = setTimeout(() => {
      this.timers.delete(id);
      fn();
    }, Math.max(0, ms) / this.speed);
    this.timers.set(id, timer);
  }

  clearTimeout(handle: { readonly id: number }): void {
    this.pending.delete(handle.id);
    clearTimeout(this.timers.get(handle.id));
    this.timers.delete(handle.id);
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = (): void => {
        this.clearTimeout(handle);
        reject(signal?.reason);
      };
      const handle = this.setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Resolves once simulated time reaches `atMs`. */
  until(atMs: number): Promise<void> {
    return this.sleep(Math.max(0, atMs - this.now()));
  }

  /** The API reads time as a Date. */
  readonly api: ApiClock = { now: () => new Date(this.now()) };

  /** Stops every pending timer (shutdown). */
  clearAll(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.pending.clear();
  }
}
