// The demo's flags, validated like every other boundary.
import { z } from 'zod';
import { readFlags } from './flags.js';

/** `--real`: three PCs on real libvirt guests (the machine's libvirtd and two namespaced test hosts). */
export const REAL_PCS = 3;

const demoOptionsObject = z
  .object({
    /** Three PCs on real libvirt guests instead of simulated hypervisors. */
    real: z.boolean().default(false),
    /** Simulated seconds per real second (default 500, or 600 with --real). */
    speed: z.coerce.number().min(1).max(20_000).optional(),
    /** Default 50, or 3 with --real (which runs exactly 3). */
    pcs: z.coerce.number().int().min(2).max(200).optional(),
    seed: z.coerce.number().int().min(0).max(2 ** 31 - 1).default(1),
    /** Keep the API up after the summary until Ctrl-C. */
    stay: z.boolean().default(false),
    /** Batch tasks per PC in the night's workload. */
    tasksPerPc: z.coerce.number().int().min(0).max(20).optional(),
    /** CPU time each batch task needs, in simulated hours (per core); default 4, or 1 with --real. */
    taskHours: z.coerce.number().min(0.1).max(24).optional(),
    /** PostgreSQL to create the demo database on (a role with CREATEDB). */
    databaseAdminUrl: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgresql:// URL').default('postgresql://deskpool:deskpool@localhost:5432/deskpool'),
    /** Use this database as it is instead of creating one (it is migrated, not emptied). */
    databaseUrl: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgresql:// URL').optional(),
    redisUrl: z.string().regex(/^rediss?:\/\//, 'must be a redis:// URL').default('redis://localhost:6379'),
    /** Real milliseconds between progress lines (0: none). */
    progressEveryMs: z.coerce.number().int().min(0).max(60_000).default(1000),
  })
  .strict();

export const demoOptionsSchema = demoOptionsObject
  .refine((o) => !o.real || o.pcs === undefined || o.pcs === REAL_PCS, { path: ['pcs'], message: `--real runs exactly ${REAL_PCS} PCs` })
  .transform((o) => ({
    ...o,
    speed: o.speed ?? (o.real ? 600 : 500),
    pcs: o.pcs ?? (o.real ? REAL_PCS : 50),
    tasksPerPc: o.tasksPerPc ?? (o.real ? 1 : 4),
    taskHours: o.taskHours ?? (o.real ? 1 : 4),
  }));
export type DemoOptions = z.output<typeof demoOptionsSchema>;
export type DemoOptionsInput = z.input<typeof demoOptionsSchema>;

export class DemoOptionsInvalid extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid demo options:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'DemoOptionsInvalid';
  }
}

export function parseDemoOptions(input: unknown): DemoOptions {
  const parsed = demoOptionsSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  throw new DemoOptionsInvalid(parsed.error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`));
}

const FLAG_NAMES: Record<string, keyof DemoOptions> = {
  '--speed': 'speed',
  '--pcs': 'pcs',
  '--seed': 'seed',
  '--tasks-per-pc': 'tasksPerPc',
  '--task-hours': 'taskHours',
  '--database-url': 'databaseUrl',
  '--redis-url': 'redisUrl',
};

/** `--speed 2000 --pcs 8 --stay` (or `--speed=2000`) → options; unknown flags are errors. */
export function parseDemoArgs(argv: readonly string[], env: NodeJS.ProcessEnv = {}): DemoOptions {
  const { values, problems } = readFlags(argv, env, FLAG_NAMES, { '--stay': ['stay', true], '--real': ['real', true] });
  if (problems.length) throw new DemoOptionsInvalid(problems);
  return parseDemoOptions(values);
}
