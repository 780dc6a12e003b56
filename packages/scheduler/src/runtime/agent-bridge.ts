// The agent gateway appends the frames the scheduler reacts to (presence, sign-in, op results)
// to a Redis stream. This bridge reads that stream with a consumer group and publishes them as
// scheduler events, so the gateway needs no knowledge of the scheduler's queues.
import { hostname } from 'node:os';
import type { PrismaClient } from '@deskpool/db';
import { opResultFrameSchema, presenceFrameSchema, signinFrameSchema } from '@deskpool/protocol';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { Logger } from './engine.js';
import { silentLogger } from './engine.js';
import type { SchedulerEvents } from './queues.js';

/** The gateway's default: `${keyPrefix}events` with keyPrefix `deskpool:agentgw:` (apps/api/src/agent/frames.ts). */
export const DEFAULT_AGENT_EVENT_STREAM = 'deskpool:agentgw:events';
export const BRIDGE_GROUP = 'deskpool-scheduler';

const foundRunningSchema = z.object({ foundRunningVmIds: z.array(z.string().min(1).max(128)).max(10_000), foundRunningTaskIds: z.array(z.string().min(1).max(128)).max(10_000).optional() });

type Publishable = (events: SchedulerEvents) => Promise<void>;

/**
 * What one stream entry asks of the scheduler, or null for frames it does not act on. Frames
 * the gateway already validated are validated again: the stream is a boundary too.
 */
export async function eventForFrame(prisma: PrismaClient, hostId: string, frameJson: string): Promise<Publishable | null> {
  let raw: unknown;
  try {
    raw = JSON.parse(frameJson);
  } catch {
    return null;
  }
  const type = (raw as { type?: unknown } | null)?.type;
  if (type === 'presence') {
    const f = presenceFrameSchema.safeParse(raw);
    if (!f.success) return null;
    return (e) => e.publishPresence({ hostId, presence: f.data.state, at: Date.parse(f.data.at) });
  }
  if (type === 'signin') {
    const f = signinFrameSchema.safeParse(raw);
    if (!f.success) return null;
    const user = await prisma.user.findUnique({ where: { name: f.data.user }, select: { id: true } });
    if (!user) return null;
    return (e) => e.publishSignIn({ hostId, userId: user.id, at: Date.parse(f.data.at) });
  }
  if (type === 'op-result') {
    const f = opResultFrameSchema.safeParse(raw);
    if (!f.success) return null;
    const found = foundRunningSchema.safeParse(f.data.result);
    return (e) =>
      e.publishOperationResult({
        idempotencyKey: f.data.idempotencyKey,
        outcome: f.data.outcome,
        ...(f.data.error ? { error: `${f.data.error.code}: ${f.data.error.message}` } : {}),
        ...(found.success ? { foundRunningVmIds: found.data.foundRunningVmIds } : {}),
        ...(found.success && found.data.foundRunningTaskIds ? { foundRunningTaskIds: found.data.foundRunningTaskIds } : {}),
      });
  }
  return null;
}

export interface AgentBridgeOptions {
  prisma: PrismaClient;
  /** A connection of the bridge's own: it blocks on XREADGROUP. */
  redis: Redis;
  events: SchedulerEvents;
  stream?: string;
  consumer?: string;
  logger?: Logger;
  /** Longest wait for new entries per read, so stop() is prompt. */
  blockMs?: number;
}

export class AgentEventBridge {
  private running = false;
  private loop: Promise<void> | undefined;
  private readonly stream: string;
  private readonly consumer: string;
  private readonly log: Logger;

  constructor(private readonly options: AgentBridgeOptions) {
    this.stream = options.stream ?? DEFAULT_AGENT_EVENT_STREAM;
    this.consumer = options.consumer ?? `${hostname()}-${process.pid}`;
    this.log = options.logger ?? silentLogger;
  }

  async start(): Promise<void> {
    try {
      // "$": a new group starts at the stream's end; replaying old presence would act on stale taps.
      await this.options.redis.xgroup('CREATE', this.stream, BRIDGE_GROUP, '$', 'MKSTREAM');
    } catch (err) {
      if (!String((err as Error).message).includes('BUSYGROUP')) throw err;
    }
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  /** Publishes one entry's event; returns whether the entry may be acknowledged. */
  private async forward(fields: string[]): Promise<boolean> {
    const get = (name: string): string | undefined => {
      const i = fields.indexOf(name);
      return i >= 0 && i % 2 === 0 ? fields[i + 1] : undefined;
    };
    const hostId = get('hostId');
    const frame = get('frame');
    if (!hostId || !frame) return true;
    const publish = await eventForFrame(this.options.prisma, hostId, frame);
    if (publish) await publish(this.options.events);
    return true;
  }

  private async handleEntries(entries: [string, string[]][]): Promise<void> {
    for (const [id, fields] of entries) {
      try {
        if (await this.forward(fields)) await this.options.redis.xack(this.stream, BRIDGE_GROUP, id);
      } catch (err) {
        // Left unacknowledged: claimed again after a restart (or by another worker).
        this.log.warn({ entry: id, err: (err as Error).message }, 'could not forward an agent event; it stays pending');
      }
    }
  }

  private async run(): Promise<void> {
    const redis = this.options.redis;
    // Entries a crashed consumer read but never acknowledged.
    try {
      const claimed = (await redis.xautoclaim(this.stream, BRIDGE_GROUP, this.consumer, 60_000, '0-0', 'COUNT', 500)) as [string, [string, string[]][]];
      await this.handleEntries(claimed[1] ?? []);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not claim pending agent events');
    }
    while (this.running) {
      try {
        const res = (await redis.xreadgroup('GROUP', BRIDGE_GROUP, this.consumer, 'COUNT', 200, 'BLOCK', this.options.blockMs ?? 1000, 'STREAMS', this.stream, '>')) as
          | [string, [string, string[]][]][]
          | null;
        for (const [, entries] of res ?? []) await this.handleEntries(entries);
      } catch (err) {
        if (!this.running) break;
        this.log.warn({ err: (err as Error).message }, 'reading agent events failed; retrying');
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }
}
