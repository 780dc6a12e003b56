import type { PresenceSource } from '@deskpool/protocol';
import type { Clock, TimerHandle } from '../clock.js';
import type { PresenceInput, PresenceSink } from './source.js';
import { PresenceTracker, type PresenceChange } from './tracker.js';

/**
 * Joins presence sources to the tracker and a timer: reports each change through `onChange`.
 * Activity does not touch the timer (mice send hundreds of events a second); the timer checks at
 * the deadline and re-arms if activity moved it.
 */
export class PresenceMonitor {
  private readonly tracker: PresenceTracker;
  private timer: TimerHandle | undefined;

  constructor(
    private readonly clock: Clock,
    thresholdMs: number,
    private readonly inputs: PresenceInput[],
    private readonly onChange: (change: PresenceChange) => void,
    private readonly onWarning: (message: string) => void,
  ) {
    this.tracker = new PresenceTracker(thresholdMs, clock.now(), inputs[0]?.kind ?? 'evdev');
  }

  get current(): { state: 'present' | 'idle' | 'unknown'; idleSince: number | null } {
    return this.tracker.current;
  }

  async start(): Promise<void> {
    const sink: PresenceSink = {
      activity: (at, source) => this.apply(this.tracker.activity(at, source)),
      idleHint: (since, source) => this.apply(this.tracker.idleHint(since, this.clock.now(), source)),
      warn: (message) => this.onWarning(message),
    };
    for (const input of this.inputs) {
      try {
        await input.start(sink);
      } catch (err) {
        this.onWarning(`presence source ${input.kind} failed to start: ${(err as Error).message}`);
      }
    }
    this.arm();
  }

  private apply(change: PresenceChange | null): void {
    if (!change) return;
    this.onChange(change);
    this.arm();
  }

  private arm(): void {
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const deadline = this.tracker.nextDeadline();
    if (deadline === null) return;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      const change = this.tracker.tick(this.clock.now());
      if (change) this.onChange(change);
      this.arm();
    }, Math.max(0, deadline - this.clock.now()));
  }

  async stop(): Promise<void> {
    if (this.timer) this.clock.clearTimeout(this.timer);
    await Promise.all(this.inputs.map((i) => i.stop()));
  }
}

export type { PresenceChange, PresenceSource };
