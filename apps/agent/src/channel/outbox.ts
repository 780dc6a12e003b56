import type { EventsDroppedFrame, SequencedUpFrame } from '@deskpool/protocol';

type Unsequenced<F> = F extends unknown ? Omit<F, 'seq'> : never;
export type OutgoingEvent = Unsequenced<Exclude<SequencedUpFrame, EventsDroppedFrame>>;

/**
 * Up-frames waiting for the API's ack. Bounded: when full, the oldest events are dropped and
 * replaced by one events-dropped summary, so the API learns what it missed and the newest
 * state (which matters most) always gets through. Op results and task-finished reports are
 * dropped last, because the control plane waits on them.
 */
const WAITED_ON: ReadonlySet<string> = new Set(['op-result', 'task-finished']);

export class Outbox {
  private readonly pending: SequencedUpFrame[] = [];
  private nextSeq = 1;

  constructor(private readonly capacity: number) {
    if (capacity < 2) throw new RangeError('outbox capacity must be at least 2');
  }

  get size(): number {
    return this.pending.length;
  }

  enqueue(event: OutgoingEvent): SequencedUpFrame {
    const frame = { ...event, seq: this.nextSeq++ } as SequencedUpFrame;
    this.pending.push(frame);
    while (this.pending.length > this.capacity) this.dropOldest();
    return frame;
  }

  private dropOldest(): void {
    // The summary, if any, sits at the front; fold the next victim into it.
    const summaryIndex = this.pending[0]?.type === 'events-dropped' ? 0 : -1;
    const from = summaryIndex + 1;
    let victimIndex = this.pending.findIndex((f, i) => i >= from && !WAITED_ON.has(f.type));
    if (victimIndex < 0) victimIndex = from;
    const [victim] = this.pending.splice(victimIndex, 1);
    if (!victim) return;
    const existing = summaryIndex === 0 ? (this.pending[0] as EventsDroppedFrame) : undefined;
    if (existing) {
      existing.count += victim.type === 'events-dropped' ? victim.count : 1;
      existing.countsByType[victim.type] = (existing.countsByType[victim.type] ?? 0) + 1;
      if (victim.at < existing.oldestAt) existing.oldestAt = victim.at;
      if (victim.at > existing.newestAt) existing.newestAt = victim.at;
      return;
    }
    // The summary goes first: the API hears about the gap before the events after it.
    const summary: EventsDroppedFrame = {
      type: 'events-dropped',
      seq: victim.seq,
      at: victim.at,
      count: 1,
      oldestAt: victim.at,
      newestAt: victim.at,
      countsByType: { [victim.type]: 1 },
    };
    this.pending.unshift(summary);
  }

  /** Everything not yet acknowledged, oldest first: what to (re)send after a reconnect. */
  unacknowledged(): readonly SequencedUpFrame[] {
    return this.pending;
  }

  /** The API recorded the frame with this seq. */
  acknowledge(seq: number): void {
    const index = this.pending.findIndex((f) => f.seq === seq);
    if (index >= 0) this.pending.splice(index, 1);
  }
}
