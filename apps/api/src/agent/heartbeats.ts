import type { PrismaClient } from '@deskpool/db';
import type { Clock } from '../clock.js';
import { Batcher } from './batcher.js';

interface Heartbeat {
  hostId: string;
  credentialId: string;
}

/**
 * Heartbeats are most of the agents' traffic (10,000 PCs at 15 s: 667 a second). They are
 * written in batches, one statement per batch, and each is acknowledged only after its batch
 * committed. A heartbeat counts only while the credential its agent connected with is valid.
 */
export class HeartbeatWriter {
  private readonly batcher: Batcher<Heartbeat, boolean>;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly clock: Clock,
    maxDelayMs = 20,
    maxBatch = 1000,
  ) {
    this.batcher = new Batcher((batch) => this.write(batch), maxDelayMs, maxBatch);
  }

  /** Resolves true once recorded, false when the credential was revoked or the host removed. */
  record(hostId: string, credentialId: string): Promise<boolean> {
    return this.batcher.add({ hostId, credentialId });
  }

  private async write(batch: Heartbeat[]): Promise<boolean[]> {
    const rows = await this.prisma.$queryRaw<{ id: string }[]>`
      UPDATE hosts AS h SET last_heartbeat_at = ${this.clock.now()}, online_state = 'online'
      FROM unnest(${batch.map((b) => b.hostId)}::uuid[], ${batch.map((b) => b.credentialId)}::uuid[]) AS b(host_id, credential_id)
      WHERE h.id = b.host_id
        AND EXISTS (SELECT 1 FROM host_credentials c WHERE c.id = b.credential_id AND c.revoked_at IS NULL)
      RETURNING h.id::text AS id`;
    const recorded = new Set(rows.map((r) => r.id));
    return batch.map((b) => recorded.has(b.hostId));
  }

  async close(): Promise<void> {
    await this.batcher.flush();
  }
}
