import { commandFrameSchema, encodeFrame, type CommandFrame, type CommandFrameInput } from '@deskpool/protocol';
import type { Redis } from 'ioredis';
import { z } from 'zod';

const takeoverSchema = z.object({ type: z.literal('takeover'), connectionId: z.string() }).strict();

/** Redis channel carrying commands for one host: whichever API process holds its socket delivers. */
export function hostChannel(prefix: string, hostId: string): string {
  return `${prefix}${hostId}`;
}

export const DEFAULT_AGENT_CHANNEL_PREFIX = 'deskpool:agent:';

export interface AgentConnection {
  hostId: string;
  /** Unique per WebSocket, so processes can tell an agent's new connection from its old one. */
  connectionId: string;
  send(frame: CommandFrame): void;
  /** Called when a newer connection for the same host replaces this one. */
  replaced(): void;
}

export class InvalidCommand extends Error {
  constructor(readonly issues: { path: string; message: string }[]) {
    super(`invalid agent command: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`);
  }
}

/**
 * Connected agents of this API process, and the Redis fan-in that lets any process (or a
 * scheduler worker) send a command to any host. One pattern subscription per process, not one
 * per host, so 10,000 agents cost one Redis subscription.
 */
export class AgentRegistry {
  private readonly local = new Map<string, AgentConnection>();
  private subscriber: Redis | undefined;
  /** Called after a command has been written to a host's socket (to mark the operation sent). */
  onDelivered: (hostId: string, command: CommandFrame) => void = () => undefined;

  constructor(
    private readonly redis: Redis,
    readonly channelPrefix: string = DEFAULT_AGENT_CHANNEL_PREFIX,
  ) {}

  async start(): Promise<void> {
    const sub = this.redis.duplicate();
    sub.on('error', () => undefined); // ioredis reconnects; /healthz reports outages
    await sub.psubscribe(`${this.channelPrefix}*`);
    sub.on('pmessage', (_pattern: string, channel: string, message: string) => {
      const hostId = channel.slice(this.channelPrefix.length);
      const conn = this.local.get(hostId);
      if (!conn) return;
      let parsed: unknown;
      try {
        parsed = JSON.parse(message);
      } catch {
        return;
      }
      const takeover = takeoverSchema.safeParse(parsed);
      if (takeover.success) {
        // The agent connected again, to this or another API process: drop the older socket.
        if (takeover.data.connectionId !== conn.connectionId) this.replace(conn);
        return;
      }
      const command = commandFrameSchema.safeParse(parsed);
      if (command.success) this.deliver(conn, command.data);
    });
    this.subscriber = sub;
  }

  async stop(): Promise<void> {
    if (this.subscriber) {
      this.subscriber.disconnect();
      this.subscriber = undefined;
    }
  }

  get size(): number {
    return this.local.size;
  }

  isConnectedHere(hostId: string): boolean {
    return this.local.has(hostId);
  }

  /**
   * Registers a greeted connection and tells every other API process, which drop an older
   * connection of the same host they may still hold (a half-open socket after a network cut).
   */
  async register(conn: AgentConnection): Promise<void> {
    const previous = this.local.get(conn.hostId);
    this.local.set(conn.hostId, conn);
    if (previous && previous !== conn) previous.replaced();
    await this.redis.publish(hostChannel(this.channelPrefix, conn.hostId), JSON.stringify({ type: 'takeover', connectionId: conn.connectionId }));
  }

  private replace(conn: AgentConnection): void {
    if (this.local.get(conn.hostId) === conn) this.local.delete(conn.hostId);
    conn.replaced();
  }

  unregister(conn: AgentConnection): boolean {
    if (this.local.get(conn.hostId) !== conn) return false;
    this.local.delete(conn.hostId);
    return true;
  }

  private deliver(conn: AgentConnection, command: CommandFrame): void {
    conn.send(command);
    this.onDelivered(conn.hostId, command);
  }

  /**
   * Sends a command to a host's agent: directly when its socket is here, otherwise through Redis
   * to whichever API process holds it. Returns whether it went out on a local socket. A command
   * for a host that is not connected anywhere is not queued here: it stays a pending operation
   * and is sent when the agent connects.
   */
  async sendCommand(hostId: string, input: CommandFrameInput): Promise<'local' | 'published'> {
    const parsed = commandFrameSchema.safeParse(input);
    if (!parsed.success) throw new InvalidCommand(parsed.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })));
    const conn = this.local.get(hostId);
    if (conn) {
      this.deliver(conn, parsed.data);
      return 'local';
    }
    await this.redis.publish(hostChannel(this.channelPrefix, hostId), encodeFrame(parsed.data));
    return 'published';
  }
}
