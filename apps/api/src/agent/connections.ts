import type { PrismaClient } from '@deskpool/db';
import type { CommandFrame } from '@deskpool/protocol';
import { pendingCommandsForHosts } from '@deskpool/scheduler';
import type { Clock } from '../clock.js';
import { Batcher } from './batcher.js';

interface Greeting {
  hostId: string;
  actor: string;
  cause: string;
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
  private readonly batcher: Batcher<Greeting, CommandFrame[]>;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly clock: Clock,
    maxDelayMs = 10,
    maxBatch = 500,
  ) {
    this.batcher = new Batcher((batch) => this.write(batch), maxDelayMs, maxBatch);
  }

  /** Records the host online (audited) and resolves with the commands it must still run. */
  connected(hostId: string, actor: string, cause: string): Promise<CommandFrame[]> {
    return this.batcher.add({ hostId, actor, cause });
  }

  private async write(batch: Greeting[]): Promise<CommandFrame[][]> {
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
    return batch.map((g) => commands.get(g.hostId) ?? []);
  }

  async close(): Promise<void> {
    await this.batcher.flush();
  }
}
