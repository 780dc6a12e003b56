/** Time for everything in the agent, so tests and the simulator can run a night in seconds. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export interface TimerHandle {
  readonly id: number;
}

let nextTimerId = 1;

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const timer = setTimeout(fn, ms);
    const handle = { id: nextTimerId++, timer };
    return handle;
  },
  clearTimeout(handle) {
    clearTimeout((handle as unknown as { timer: NodeJS.Timeout }).timer);
  },
};

/**
 * Real time running `speed` times faster from the moment it is created: an agent process under
 * test sees an idle threshold of ten minutes pass in a fraction of a second.
 */
export function acceleratedClock(speed: number, base: Clock = systemClock): Clock {
  if (!(speed > 0)) throw new RangeError('clock speed must be positive');
  const origin = base.now();
  return {
    now: () => origin + (base.now() - origin) * speed,
    setTimeout: (fn, ms) => base.setTimeout(fn, ms / speed),
    clearTimeout: (handle) => base.clearTimeout(handle),
  };
}

/** A clock that moves only when told to; timers fire in due order as it advances. */
export class ManualClock implements Clock {
  private timers = new Map<number, { at: number; fn: () => void }>();
  constructor(private current = 0) {}

  now(): number {
    return this.current;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = nextTimerId++;
    this.timers.set(id, { at: this.current + Math.max(0, ms), fn });
    return { id };
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers.delete(handle.id);
  }

  advance(ms: number): void {
    const until = this.current + ms;
    for (;;) {
      let dueId: number | undefined;
      let dueAt = Infinity;
      for (const [id, t] of this.timers) if (t.at <= until && t.at < dueAt) [dueId, dueAt] = [id, t.at];
      if (dueId === undefined) break;
      const timer = this.timers.get(dueId);
      this.timers.delete(dueId);
      this.current = Math.max(this.current, dueAt);
      timer?.fn();
    }
    this.current = until;
  }
}
