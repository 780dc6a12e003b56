import { promises as fs } from 'node:fs';
import { z } from 'zod';
import type { Clock, TimerHandle } from '../clock.js';
import type { PresenceInput, PresenceSink } from './source.js';

/** One line of a presence trace: activity `offsetMs` after the source starts. */
export const traceLineSchema = z.object({ offsetMs: z.number().nonnegative(), event: z.literal('activity') }).strict();
export type TraceLine = z.infer<typeof traceLineSchema>;

export function parseTrace(text: string): TraceLine[] {
  return text
    .split('\n')
    .map((line, index) => ({ line: line.trim(), index }))
    .filter(({ line }) => line.length > 0 && !line.startsWith('#'))
    .map(({ line, index }) => {
      const parsed = traceLineSchema.safeParse(JSON.parse(line));
      if (!parsed.success) throw new Error(`presence trace line ${index + 1}: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
      return parsed.data;
    })
    .sort((a, b) => a.offsetMs - b.offsetMs);
}

/** Replays recorded activity against the (usually simulated) clock: how the simulator drives agents. */
export class TraceSource implements PresenceInput {
  readonly kind = 'trace' as const;
  private timers: TimerHandle[] = [];

  constructor(
    private readonly clock: Clock,
    private readonly trace: TraceLine[] | string,
  ) {}

  async start(sink: PresenceSink): Promise<void> {
    const lines = typeof this.trace === 'string' ? parseTrace(await fs.readFile(this.trace, 'utf8')) : this.trace;
    for (const line of lines) {
      this.timers.push(this.clock.setTimeout(() => sink.activity(this.clock.now(), 'trace'), line.offsetMs));
    }
  }

  async stop(): Promise<void> {
    for (const t of this.timers) this.clock.clearTimeout(t);
    this.timers = [];
  }
}
