// Time for the simulated hypervisor. Operations "take" time by sleeping on this clock, so a
// virtual clock runs a night of suspends and restores in milliseconds of real time.

export interface SimClock {
  /** Milliseconds since the epoch. */
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const realSimClock: SimClock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const t = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = (): void => {
        clearTimeout(t);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

interface Sleeper {
  at: number;
  seq: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/**
 * A clock that moves only by advance() or, with autoAdvance, by jumping to the next sleeper's
 * wake-up time once the event loop has nothing else to do (a discrete-event simulation: the
 * earliest sleeper always wakes first, whatever order they were registered in).
 */
export class VirtualClock implements SimClock {
  private current: number;
  private sleepers: Sleeper[] = [];
  private seq = 0;
  private scheduled = false;
  readonly autoAdvance: boolean;

  constructor(opts: { startMs?: number; autoAdvance?: boolean } = {}) {
    this.current = opts.startMs ?? Date.UTC(2026, 0, 5, 8, 0, 0);
    this.autoAdvance = opts.autoAdvance ?? true;
  }

  now(): number {
    return this.current;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const sleeper: Sleeper = { at: this.current + Math.max(0, ms), seq: this.seq++, resolve, reject };
      this.sleepers.push(sleeper);
      signal?.addEventListener(
        'abort',
        () => {
          this.sleepers = this.sleepers.filter((s) => s !== sleeper);
          reject(signal.reason);
        },
        { once: true },
      );
      this.schedule();
    });
  }

  /** Moves time forward by ms, waking sleepers due on the way in order. */
  async advance(ms: number): Promise<void> {
    const until = this.current + ms;
    for (;;) {
      const next = this.earliest();
      if (!next || next.at > until) break;
      this.wake(next);
      await new Promise((r) => setImmediate(r));
    }
    this.current = Math.max(this.current, until);
  }

  private earliest(): Sleeper | undefined {
    let best: Sleeper | undefined;
    for (const s of this.sleepers) if (!best || s.at < best.at || (s.at === best.at && s.seq < best.seq)) best = s;
    return best;
  }

  private wake(s: Sleeper): void {
    this.sleepers = this.sleepers.filter((x) => x !== s);
    this.current = Math.max(this.current, s.at);
    s.resolve();
  }

  private schedule(): void {
    if (!this.autoAdvance || this.scheduled) return;
    this.scheduled = true;
    // setImmediate runs after pending I/O and promise jobs: everyone who is about to sleep has.
    setImmediate(() => {
      this.scheduled = false;
      const next = this.earliest();
      if (next) {
        this.wake(next);
        if (this.sleepers.length) this.schedule();
      }
    });
  }
}
