import type { PrismaClient } from '@deskpool/db';
import type { Histogram } from 'prom-client';
import type { AgentEventSink } from '../agent/frames.js';
import type { Clock } from '../clock.js';

/** Commands whose success means a desktop is now running on the host that answered. */
export const DESKTOP_ARRIVAL_KINDS: ReadonlySet<string> = new Set(['restore', 'start', 'migrate-in']);

/** A tap nobody's desktop followed within this long is forgotten (the person went elsewhere). */
const TAP_FORGET_MS = 60 * 60_000;
/** Op-results already observed (a re-sent frame reaches the sink again). */
const SEEN_LIMIT = 10_000;

export interface AgentObserverDeps {
  prisma: PrismaClient;
  clock: Clock;
  operationDuration: Histogram<'kind' | 'outcome'>;
  tapToDesktop: Histogram;
  /** Observation problems (a database hiccup) are reported here and never fail the frame. */
  onError?: (err: unknown) => void;
}

/**
 * Watches agent events as they pass through this API process on their way to the scheduler
 * and turns them into histograms: how long each command took (delivered → answered, by the
 * API's clock) and how long a person waited from the tap that made them present until a
 * desktop was running at that PC (0 when one already was).
 */
export class AgentObserver {
  private readonly taps = new Map<string, number>();
  private readonly seen = new Set<string>();

  constructor(private readonly deps: AgentObserverDeps) {}

  /** The sink the gateway gets: forwards everything to `inner`, then observes. */
  wrap(inner?: AgentEventSink): AgentEventSink {
    const sink: AgentEventSink = {
      publishPresence: async (p) => {
        await inner?.publishPresence(p);
        this.observe(() => this.presence(p.hostId, p.presence));
      },
      publishSignIn: async (p) => {
        await inner?.publishSignIn(p);
      },
      publishOperationResult: async (p) => {
        await inner?.publishOperationResult(p);
        this.observe(() => this.operationResult(p.idempotencyKey, p.outcome));
      },
    };
    if (inner?.publishTaskFinished) sink.publishTaskFinished = (p) => inner.publishTaskFinished!(p);
    return sink;
  }

  private observe(work: () => Promise<void>): void {
    work().catch((err: unknown) => this.deps.onError?.(err));
  }

  async presence(hostId: string, presence: 'present' | 'idle'): Promise<void> {
    const now = this.deps.clock.now().getTime();
    if (presence === 'idle') {
      this.taps.delete(hostId);
      return;
    }
    if (this.taps.has(hostId)) return;
    const running = await this.deps.prisma.desktopVm.count({ where: { currentHostId: hostId, state: 'RUNNING' } });
    if (running > 0) this.deps.tapToDesktop.observe(0);
    else this.taps.set(hostId, now);
    this.forgetOldTaps(now);
  }

  async operationResult(idempotencyKey: string, outcome: string): Promise<void> {
    if (this.seen.has(idempotencyKey)) return;
    const op = await this.deps.prisma.operation.findUnique({
      where: { idempotencyKey },
      select: { kind: true, hostId: true, vmId: true, sentAt: true, createdAt: true },
    });
    if (!op) return;
    this.remember(idempotencyKey);
    const now = this.deps.clock.now().getTime();
    const issued = (op.sentAt ?? op.createdAt).getTime();
    this.deps.operationDuration.observe({ kind: op.kind, outcome }, Math.max(0, now - issued) / 1000);
    if (outcome !== 'succeeded' || op.vmId === null || !DESKTOP_ARRIVAL_KINDS.has(op.kind)) return;
    const tappedAt = this.taps.get(op.hostId);
    if (tappedAt === undefined) return;
    this.taps.delete(op.hostId);
    this.deps.tapToDesktop.observe(Math.max(0, now - tappedAt) / 1000);
  }

  private remember(key: string): void {
    this.seen.add(key);
    if (this.seen.size > SEEN_LIMIT) {
      const oldest = this.seen.values().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
  }

  private forgetOldTaps(now: number): void {
    for (const [hostId, at] of this.taps) if (now - at > TAP_FORGET_MS) this.taps.delete(hostId);
  }
}
