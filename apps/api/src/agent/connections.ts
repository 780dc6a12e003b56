import type { PrismaClient } from '@deskpool/db';
import type { CommandFrame } from '@deskpool/protocol';
import { pendingCommandsForHosts } from '@deskpool/scheduler';
import type { Clock } from '../clock.js';

interface Greeting {
  hostId: string;
  actor: string;
  cause: string;
  resolve(commands: CommandFrame[]): void;
  reject(err: unknown): void;
}

/**
 * What a greeted agent connection costs the database: its host marked online with an
 * `agent.connected` audit event, and the commands it still has to carry out. After an API
 * restart thousands of agents greet at once; one transaction and one query per agent made
 * connecting 10,000 of them take minutes. Greetings are written in batches instead: one
 * statement marks a batch online and audits it (atomic, like the transaction it replaces), one
 * query reads the batch's unanswered commands. Each greeting resolves after its batch committed.
 */
export class ConnectionRecorder {
  private pending: Greeting[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly clock: Clock,
    private readonly maxDelayMs = 10,
    private readonly maxBatch = 500,
  ) {}

  /** Records the host online (audited) and resolves with the commands it must still run. */
  connected(hostId: string, actor: string, cause: string): Promise<CommandFrame[]> {
    return new Promise((resolve, reject) => {
      this.pending.push({ hostId, actor, cause, resolve, reject });
      if (this.pending.length >= this.maxBatch) void this.flush();
      else this.timer ??= setTimeout(() => void this.flush(), this.maxDelayMs);
    });
  }

  private async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    try {
      const rows = JSON.stringify(batch.map((g) => ({ host_id: g.hostId, actor: g.actor, cause: g.cause })));
      await this.prisma.$executeRawUnsafe(
        `WITH b AS (SELECT * FROM ROWS FROM (jsonb_to_recordset($1::jsonb) AS (host_id uuid, actor text, cause text)) WITH ORDINALITY AS x(host_id, actor, cause, n)),
              up AS (UPDATE "hosts" AS h SET "online_state" = 'online', "last_heartbeat_at" = $2::timestamptz FROM b WHERE h."id" = b.host_id RETURNING h."id")
         INSERT INTO "audit_events" ("entity_type", "entity_id", "action", "actor", "cause")
         SELECT 'host', b.host_id::text, 'agent.connected', b.actor, b.cause FROM b ORDER BY b.n`,
        rows,
        this.clock.now().toISOString(),
      );
      const commands = await pendingCommandsForHosts(this.prisma, [...new Set(batch.map((g) => g.hostId))]);
      for (const g of batch) g.resolve(commands.get(g.hostId) ?? []);
    } catch (err) {
      for (const g of batch) g.reject(err);
    }
  }

  async close(): Promise<void> {
    await this.flush();
  }
}
