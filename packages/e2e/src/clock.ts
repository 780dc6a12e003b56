// One clock for the API, the scheduler and the agents of an office under test: real time plus an
// offset that a test moves forward, so "idle for fifteen minutes" takes no real time while the
// guests, BullMQ and libvirt keep running in real time.
import type { Clock as AgentClock } from '@deskpool/agent';
import type { Clock as ApiClock } from '@deskpool/api';
import type { Clock as SchedulerClock } from '@deskpool/scheduler';

export class OfficeClock implements AgentClock, SchedulerClock {
  private offsetMs = 0;
  private readonly timers = new Map<number, NodeJS.Timeout>();
  private nextId = 1;

  now(): number {
    return Date.now() + this.offsetMs;
  }

  /** Moves time forward; timers already set keep their real-time delay. */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError('time only moves forward');
    this.offsetMs += ms;
  }

  setTimeout(fn: () => void, ms: number): { id: number } {
    const id = this.nextId++;
    const timer = setTimeout(() => {
      this.timers.delete(id);
      fn();
    }, Math.max(0, ms));
    this.timers.set(id, timer);
    return { id };
  }

  clearTimeout(handle: { readonly id: number }): void {
    clearTimeout(this.timers.get(handle.id));
    this.timers.delete(handle.id);
  }

  /** The API reads time as a Date. */
  readonly api: ApiClock = { now: () => new Date(this.now()) };

  clearAll(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
