import type { PresenceSource, PresenceState } from '@deskpool/protocol';

export interface PresenceChange {
  state: PresenceState;
  /** Epoch ms of the last activity when idle; null when present. */
  idleSince: number | null;
  /** Epoch ms the change was decided. */
  at: number;
  source: PresenceSource;
}

/**
 * The presence decision, free of I/O. A person's first activity after idle makes the PC
 * `present` at once (the morning tap must never wait); `idle` needs a whole threshold without
 * activity from any source, and each state is reported once however many events arrive.
 * Until the first activity or the first threshold the state is unknown and nothing is reported.
 */
export class PresenceTracker {
  private state: PresenceState | 'unknown' = 'unknown';
  /** Last activity per source; the agent's start counts as activity so nobody is declared idle early
   * (and an agent started at night reports idle since its start: the earliest it can vouch for). */
  private readonly lastActivity = new Map<PresenceSource | 'startup', number>();
  private lastSource: PresenceSource;

  constructor(
    private readonly thresholdMs: number,
    startedAt: number,
    initialSource: PresenceSource,
  ) {
    if (!(thresholdMs > 0)) throw new RangeError('idle threshold must be positive');
    this.lastActivity.set('startup', startedAt);
    this.lastSource = initialSource;
  }

  get current(): { state: PresenceState | 'unknown'; idleSince: number | null } {
    return { state: this.state, idleSince: this.state === 'idle' ? this.lastActivityAt() : null };
  }

  lastActivityAt(): number {
    return Math.max(...this.lastActivity.values());
  }

  /** Input seen from a source at `at`. */
  activity(at: number, source: PresenceSource): PresenceChange | null {
    this.lastActivity.set(source, Math.max(at, this.lastActivity.get(source) ?? -Infinity));
    this.lastSource = source;
    if (this.state === 'present') return null;
    this.state = 'present';
    return { state: 'present', idleSince: null, at, source };
  }

  /**
   * A source that only knows "idle since T" (logind's IdleSinceHint): its last activity is T.
   * Other sources' later activity still counts.
   */
  idleHint(idleSince: number, now: number, source: PresenceSource): PresenceChange | null {
    this.lastActivity.set(source, idleSince);
    return this.tick(now, source);
  }

  /** Re-evaluates at `now`; returns the change to idle when the threshold has passed. */
  tick(now: number, source: PresenceSource = this.lastSource): PresenceChange | null {
    if (this.state === 'idle') return null;
    const last = this.lastActivityAt();
    if (now - last < this.thresholdMs) return null;
    this.state = 'idle';
    return { state: 'idle', idleSince: last, at: now, source };
  }

  /** When to call tick() next, or null while idle (only activity changes anything then). */
  nextDeadline(): number | null {
    return this.state === 'idle' ? null : this.lastActivityAt() + this.thresholdMs;
  }
}
