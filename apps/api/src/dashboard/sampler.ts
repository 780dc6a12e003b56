import type { PrismaClient } from '@deskpool/db';
import type { Clock } from '../clock.js';
import { readFleet } from './fleet.js';

export interface SamplerOptions {
  /** Length of one sampling period on the control plane's clock (one row per period). */
  periodMs: number;
  /** How often (real time) to check whether a new period began; 0 = never sample. */
  tickMs: number;
  /** Samples older than this (control-plane clock) are deleted. */
  retentionMs: number;
}

export const DEFAULT_SAMPLER: SamplerOptions = { periodMs: 60_000, tickMs: 15_000, retentionMs: 31 * 24 * 3600_000 };

/**
 * Writes the dashboard timeline: one `fleet_samples` row per period with the PCs by state,
 * power and batch counts. Every API process runs one; the first to write a period wins, so
 * the table has one row per period however many processes there are. Periods are on the
 * injected clock, so an accelerated clock (the demo) yields a timeline of the simulated night.
 */
export class FleetSampler {
  private timer: NodeJS.Timeout | undefined;
  private lastPeriod = -1;
  private running: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly prisma: PrismaClient,
    private readonly clock: Clock,
    private readonly options: SamplerOptions,
    /** Told after this process wrote a sample. */
    private readonly onSample: (at: Date) => void = () => undefined,
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {}

  start(): void {
    if (this.options.tickMs <= 0 || this.timer) return;
    this.timer = setInterval(() => {
      this.running = this.sampleNow().catch(this.onError);
    }, this.options.tickMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** Writes the current period's sample unless it exists; returns its time, or null if it existed. */
  async sampleNow(): Promise<Date | null> {
    const period = Math.floor(this.clock.now().getTime() / this.options.periodMs) * this.options.periodMs;
    if (period === this.lastPeriod) return null;
    const [fleet, [done]] = await Promise.all([
      readFleet(this.prisma),
      this.prisma.$queryRaw<{ n: number }[]>`SELECT count(*)::int AS n FROM batch_tasks WHERE state = 'succeeded'`,
    ]);
    const at = new Date(period);
    const inserted = await this.prisma.$executeRaw`
      INSERT INTO fleet_samples (at, pcs, power_watts, always_on_watts, desktops_running, tasks_running, tasks_succeeded)
      VALUES (${at}, ${JSON.stringify(fleet.counts)}::jsonb, ${fleet.powerWatts}, ${fleet.alwaysOnWatts}, ${fleet.desktopsRunning}, ${fleet.tasksRunning}, ${done?.n ?? 0})
      ON CONFLICT (at) DO NOTHING`;
    this.lastPeriod = period;
    await this.prisma.$executeRaw`DELETE FROM fleet_samples WHERE at < ${new Date(period - this.options.retentionMs)}`;
    if (inserted === 0) return null;
    this.onSample(at);
    return at;
  }
}
