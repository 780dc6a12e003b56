import type { PrismaClient } from '@deskpool/db';

/** Fleet-wide counts read from PostgreSQL: one grouped query per table. */
export interface FleetCounts {
  hosts: { onlineState: string; presence: string; asleep: boolean; count: number }[];
  vms: Map<string, number>;
  tasks: Map<string, number>;
  jobs: Map<string, number>;
}

export async function readFleetCounts(prisma: PrismaClient): Promise<FleetCounts> {
  const [hosts, vms, tasks, jobs] = await Promise.all([
    prisma.$queryRaw<{ online_state: string; presence_state: string; asleep: boolean; n: number }[]>`
      SELECT online_state::text, presence_state::text, asleep, count(*)::int AS n FROM hosts GROUP BY 1, 2, 3`,
    prisma.$queryRaw<{ state: string; n: number }[]>`SELECT state::text, count(*)::int AS n FROM desktop_vms GROUP BY 1`,
    prisma.$queryRaw<{ state: string; n: number }[]>`SELECT state::text, count(*)::int AS n FROM batch_tasks GROUP BY 1`,
    prisma.$queryRaw<{ state: string; n: number }[]>`SELECT state::text, count(*)::int AS n FROM batch_jobs GROUP BY 1`,
  ]);
  const byState = (rows: { state: string; n: number }[]) => new Map(rows.map((r) => [r.state, r.n]));
  return {
    hosts: hosts.map((h) => ({ onlineState: h.online_state, presence: h.presence_state, asleep: h.asleep, count: h.n })),
    vms: byState(vms),
    tasks: byState(tasks),
    jobs: byState(jobs),
  };
}

/**
 * A value computed at most once per `ttlMs`: a scrape every few seconds from several
 * Prometheus servers costs one round of queries. Concurrent callers share one computation.
 */
export class CachedValue<T> {
  private value: { at: number; promise: Promise<T> } | undefined;

  constructor(
    private readonly compute: () => Promise<T>,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get(): Promise<T> {
    const t = this.now();
    if (this.value && t - this.value.at < this.ttlMs) return this.value.promise;
    const promise = this.compute();
    this.value = { at: t, promise };
    // A failed computation is not cached: the next scrape tries again.
    promise.catch(() => {
      if (this.value?.promise === promise) this.value = undefined;
    });
    return promise;
  }
}
