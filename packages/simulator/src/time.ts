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

  constructor(
    readonly startMs: number,
    readonly speed: number,
  ) {
    if (!(speed > 0)) throw new RangeError('speed must be positive');
  }

  /** Starts the clock running. */
  begin(): void {
    this.realOrigin ??= performance.now();
  }

  now(): number {
    if (this.realOrigin === null) return this.startMs;
    return this.startMs + Math.floor((performance.now() - this.realOrigin) * this.speed);
  }

  setTimeout(fn: () => void, ms: number): { id: number } {
    const id = nextHandle++;
    const timer = setTimeout(() => {
      this.timers.delete(id);
      fn();
    }, Math.max(0, ms) / this.speed);
    this.timers.set(id, timer);
    return { id };
  }

  clearTimeout(handle: { readonly id: number }): void {
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
  }
}
