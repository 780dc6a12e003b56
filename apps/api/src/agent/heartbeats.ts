import type { PrismaClient } from '@deskpool/db';
import type { Clock } from '../clock.js';

interface Pending {
  hostId: string;
  credentialId: string;
  resolve(valid: boolean): void;
  reject(err: unknown): void;
}

/**
 * Heartbeats are most of the agents' traffic (10,000 PCs at 15 s: 667 a second). They are
 * written in batches, one statement per batch, and each is acknowledged only after its batch
 * committed. A heartbeat counts only while the credential its agent connected with is valid.
 */
export class HeartbeatWriter {
  private pending: Pending[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly clock: Clock,
    private readonly maxDelayMs = 20,
    private readonly maxBatch = 1000,
  ) {}

  /** Resolves true once recorded, false when the credential was revoked or the host removed. */
  record(hostId: string, credentialId: string): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.pending.push({ hostId, credentialId, resolve, reject });
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
      const rows = await this.prisma.$queryRaw<{ id: string }[]>`
        UPDATE hosts AS h SET last_heartbeat_at = ${this.clock.now()}, online_state = 'online'
        FROM unnest(${batch.map((b) => b.hostId)}::uuid[], ${batch.map((b) => b.credentialId)}::uuid[]) AS b(host_id, credential_id)
        WHERE h.id = b.host_id
          AND EXISTS (SELECT 1 FROM host_credentials c WHERE c.id = b.credential_id AND c.revoked_at IS NULL)
        RETURNING h.id::text AS id`;
      const recorded = new Set(rows.map((r) => r.id));
      for (const b of batch) b.resolve(recorded.has(b.hostId));
    } catch (err) {
      for (const b of batch) b.reject(err);
    }
  }

  async close(): Promise<void> {
    await this.flush();
  }
}
