// The multi-day run's options (`npm run demo -- --days N`, and the week1000 benchmark).
import { z } from 'zod';
import { readFlags } from './flags.js';

const postgresUrl = z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgresql:// URL');

export const fleetOptionsSchema = z
  .object({
    /** Simulated days, from Monday 00:00 UTC. */
    days: z.coerce.number().int().min(1).max(28),
    /** Start at this hour of Monday instead of midnight (people already at their desks have their desktops running). */
    startHour: z.coerce.number().int().min(0).max(23).default(0),
    /** Run this many hours instead of `days` whole days. */
    hours: z.coerce.number().min(1).max(28 * 24).optional(),
    /**
     * How the office is set up before the clock starts: "api" (REST calls and real enrollment
     * per PC, as an admin would) or "database" (rows written in bulk; for large offices, where
     * set-up is not what is measured).
     */
    setup: z.enum(['api', 'database']).default('api'),
    pcs: z.coerce.number().int().min(2).max(2000).default(50),
    /** PCs per pool: a large office is several pools (floors), each planned under its own lock. */
    poolSize: z.coerce.number().int().min(2).max(2000).default(50),
    /** Simulated seconds per real second. */
    speed: z.coerce.number().min(1).max(20_000).default(500),
    seed: z.coerce.number().int().min(0).max(2 ** 31 - 1).default(1),
    /** Weeks of arrival history the office starts with (generated from the same habits). */
    historyWeeks: z.coerce.number().int().min(0).max(12).default(4),
    /** Replay this presence CSV instead of generating presence (see presence.ts for the columns). */
    presenceCsv: z.string().min(1).optional(),
    /** Batch work submitted per day, as a share of the office's night capacity (PC cores × 12 h). */
    demand: z.coerce.number().min(0).max(10).default(1.5),
    /** Let the scheduler put idle, empty PCs to sleep (and wake them over Wake-on-LAN). */
    powerManagement: z.boolean().default(true),
    /** Where the report (report.json, report.html) is written; none when unset. */
    reportDir: z.string().min(1).optional(),
    databaseAdminUrl: postgresUrl.default('postgresql://deskpool:deskpool@localhost:5432/deskpool'),
    databaseUrl: postgresUrl.optional(),
    redisUrl: z.string().regex(/^rediss?:\/\//, 'must be a redis:// URL').default('redis://localhost:6379'),
    /** Real milliseconds between progress lines (0: none). */
    progressEveryMs: z.coerce.number().int().min(0).max(600_000).default(2000),
    /** Events the scheduler worker plans at once (different pools in parallel). */
    concurrency: z.coerce.number().int().min(1).max(32).default(4),
  })
  .strict();
export type FleetOptions = z.infer<typeof fleetOptionsSchema>;
export type FleetOptionsInput = z.input<typeof fleetOptionsSchema>;

export class FleetOptionsInvalid extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid fleet options:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'FleetOptionsInvalid';
  }
}

export function parseFleetOptions(input: unknown): FleetOptions {
  const parsed = fleetOptionsSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  throw new FleetOptionsInvalid(parsed.error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`));
}

const FLAG_NAMES: Record<string, keyof FleetOptions> = {
  '--days': 'days',
  '--start-hour': 'startHour',
  '--hours': 'hours',
  '--setup': 'setup',
  '--pcs': 'pcs',
  '--pool-size': 'poolSize',
  '--speed': 'speed',
  '--seed': 'seed',
  '--history-weeks': 'historyWeeks',
  '--presence-csv': 'presenceCsv',
  '--demand': 'demand',
  '--report-dir': 'reportDir',
  '--database-url': 'databaseUrl',
  '--redis-url': 'redisUrl',
  '--concurrency': 'concurrency',
};

/** `--days 7 --pcs 100 --no-power-management` → options; unknown flags are errors. */
export function parseFleetArgs(argv: readonly string[], env: NodeJS.ProcessEnv = {}): FleetOptions {
  const { values, problems } = readFlags(argv, env, FLAG_NAMES, { '--no-power-management': ['powerManagement', false] });
  if (problems.length) throw new FleetOptionsInvalid(problems);
  return parseFleetOptions(values);
}
