import type { PrismaClient } from '@deskpool/db';
import { readFleet, type Fleet, type PcTile } from './fleet.js';

export interface AuditSummary {
  id: string;
  at: string;
  entityType: string;
  entityId: string;
  action: string;
  actor: string;
}

/** What live dashboards are told. */
export type FeedEvent =
  | {
      type: 'change';
      /** The PCs whose tile changed since the last event, in full. */
      pcs: PcTile[];
      /** Ids of PCs that are gone (host removed). */
      removed: string[];
      counts: Fleet['counts'];
      powerWatts: number;
      alwaysOnWatts: number;
      /** New audit events (newest last; at most MAX_AUDIT_PER_EVENT). */
      audit: AuditSummary[];
      /** Entity types the new audit events were about (the page refreshes those panels). */
      touched: string[];
    }
  | { type: 'sample'; at: string };

const MAX_AUDIT_PER_EVENT = 50;
const AUDIT_BATCH = 1000;
/** Audit events about these change what a PC tile shows. */
const TILE_ENTITIES = new Set(['host', 'vm', 'task', 'job', 'operation']);

/**
 * The change feed behind the dashboard's server-sent events. Every state change in deskpool
 * writes an audit event (invariant 4), whichever process made it (API, agent gateway, scheduler
 * workers), so following the audit trail sees them all. While at least one dashboard listens,
 * this process reads new audit events (one indexed query every `pollMs`); when some concern
 * PCs it reads the fleet again (one query) and pushes only the tiles that changed.
 */
export class DashboardFeed {
  private readonly listeners = new Set<(e: FeedEvent) => void>();
  private lastAuditId: bigint | null = null;
  private lastSampleAt: number | null = null;
  private tiles = new Map<string, string>();
  private summary: Pick<Fleet, 'counts' | 'powerWatts' | 'alwaysOnWatts'> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private stopped = false;
  private primedWaiters: (() => void)[] = [];

  constructor(
    private readonly prisma: PrismaClient,
    private readonly pollMs: number,
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {}

  get listenerCount(): number {
    return this.listeners.size;
  }

  subscribe(listener: (e: FeedEvent) => void): () => void {
    this.listeners.add(listener);
    if (this.listeners.size === 1) this.schedule(0);
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.pause();
    };
  }

  /** Resolves once the feed knows where the audit trail ends: every later change is pushed. */
  whenPrimed(): Promise<void> {
    if (this.lastAuditId !== null) return Promise.resolve();
    return new Promise((resolve) => this.primedWaiters.push(resolve));
  }

  /** A sample this process just wrote. */
  sampled(at: Date): void {
    this.lastSampleAt = at.getTime();
    this.emit({ type: 'sample', at: at.toISOString() });
  }

  async close(): Promise<void> {
    this.stopped = true;
    this.pause();
    this.listeners.clear();
    for (const resolve of this.primedWaiters.splice(0)) resolve();
    await this.polling;
  }

  private pause(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    // Starting again later begins from the audit trail's end then, not from where it paused.
    this.lastAuditId = null;
  }

  private schedule(delayMs: number): void {
    if (this.stopped || this.timer || this.listeners.size === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // One read at a time, even when a pause and a new listener overlap a read in flight.
      this.polling = (this.polling ?? Promise.resolve())
        .then(() => this.poll())
        .catch(this.onError)
        .finally(() => this.schedule(this.pollMs));
    }, delayMs);
    this.timer.unref();
  }

  private emit(event: FeedEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  private async poll(): Promise<void> {
    if (this.lastAuditId === null) {
      const [last] = await this.prisma.$queryRaw<{ id: bigint | null }[]>`SELECT max(id) AS id FROM audit_events`;
      this.lastAuditId = last?.id ?? 0n;
      this.remember(await readFleet(this.prisma));
      for (const resolve of this.primedWaiters.splice(0)) resolve();
      return;
    }
    const rows = await this.prisma.$queryRaw<{ id: bigint; at: Date; entity_type: string; entity_id: string; action: string; actor: string }[]>`
      SELECT id, at, entity_type, entity_id, action, actor FROM audit_events WHERE id > ${this.lastAuditId} ORDER BY id LIMIT ${AUDIT_BATCH}`;
    if (rows.length > 0) {
      this.lastAuditId = rows[rows.length - 1]!.id;
      const touched = [...new Set(rows.map((r) => r.entity_type))];
      let diff: { pcs: PcTile[]; removed: string[] } = { pcs: [], removed: [] };
      if (touched.some((t) => TILE_ENTITIES.has(t)) || !this.summary) diff = this.remember(await readFleet(this.prisma));
      const summary = this.summary!;
      const audit = rows.slice(-MAX_AUDIT_PER_EVENT).map((r) => ({ id: r.id.toString(), at: r.at.toISOString(), entityType: r.entity_type, entityId: r.entity_id, action: r.action, actor: r.actor }));
      this.emit({ type: 'change', ...diff, counts: summary.counts, powerWatts: summary.powerWatts, alwaysOnWatts: summary.alwaysOnWatts, audit, touched });
    }
    // Samples written by other API processes.
    const [sample] = await this.prisma.$queryRaw<{ at: Date | null }[]>`SELECT max(at) AS at FROM fleet_samples`;
    const at = sample?.at?.getTime() ?? null;
    if (at !== null && at !== this.lastSampleAt) {
      const first = this.lastSampleAt === null;
      this.lastSampleAt = at;
      if (!first) this.emit({ type: 'sample', at: new Date(at).toISOString() });
    }
  }

  /** Stores the fleet's tiles and returns those that differ from the previous read. */
  private remember(fleet: Fleet): { pcs: PcTile[]; removed: string[] } {
    const next = new Map<string, string>();
    const pcs: PcTile[] = [];
    for (const pc of fleet.pcs) {
      const json = JSON.stringify(pc);
      next.set(pc.id, json);
      if (this.tiles.get(pc.id) !== json) pcs.push(pc);
    }
    const removed = [...this.tiles.keys()].filter((id) => !next.has(id));
    this.tiles = next;
    this.summary = { counts: fleet.counts, powerWatts: fleet.powerWatts, alwaysOnWatts: fleet.alwaysOnWatts };
    return { pcs, removed };
  }
}
