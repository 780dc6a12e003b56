// The chaos run's flags, validated as a whole; a bad one is named.
import { z } from 'zod';
import { FAULT_KINDS, type FaultKind } from './plan.js';

export const chaosOptionsSchema = z
  .object({
    seed: z.coerce.number().int().nonnegative().max(2 ** 31).default(1),
    faults: z.coerce.number().int().min(1).max(1000).default(50),
    pcs: z.coerce.number().int().min(2).max(1000).default(200),
    fleets: z.coerce.number().int().min(1).max(16).default(4),
    /** Real seconds between two faults. */
    faultSpacingSeconds: z.coerce.number().positive().max(600).default(8),
    /** CPU time each batch task needs, in real seconds. */
    taskSeconds: z.coerce.number().positive().max(3600).default(60),
    tasksPerPc: z.coerce.number().int().min(0).max(16).default(1),
    /** Tap (or the end of the faults, if later) to the desktop running at that PC. */
    sloSeconds: z.coerce.number().positive().max(3600).default(90),
    /** Share of the people who come back in the morning and tap. */
    tapShare: z.coerce.number().min(0).max(1).default(0.8),
    /** Only these kinds of fault (comma-separated); all kinds by default. */
    faultKinds: z
      .preprocess((v) => (typeof v === 'string' ? v.split(',').map((k) => k.trim()).filter((k) => k !== '') : v), z.array(z.enum(FAULT_KINDS as [FaultKind, ...FaultKind[]])).min(1))
      .optional(),
    /**
     * TEST ONLY: the deliberately broken build the checker must catch. Agents accept stale
     * generations and their reconcile destroys nothing; workers count a lost host as fenced at
     * once (requeueing its tasks while it may still run them).
     */
    testOnlyDisableFencing: z.coerce.boolean().default(false),
    /** Keep the temp dir (logs of every process, databases) after the run. */
    keep: z.coerce.boolean().default(false),
    workDir: z.string().min(1).optional(),
  })
  .strict();
export type ChaosOptions = z.infer<typeof chaosOptionsSchema>;
export type ChaosOptionsInput = z.input<typeof chaosOptionsSchema>;

export class ChaosOptionsInvalid extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid chaos options:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ChaosOptionsInvalid';
  }
}

const FLAGS: Record<string, keyof ChaosOptionsInput> = {
  '--seed': 'seed',
  '--faults': 'faults',
  '--pcs': 'pcs',
  '--fleets': 'fleets',
  '--fault-spacing': 'faultSpacingSeconds',
  '--task-seconds': 'taskSeconds',
  '--tasks-per-pc': 'tasksPerPc',
  '--slo': 'sloSeconds',
  '--tap-share': 'tapShare',
  '--work-dir': 'workDir',
  '--fault-kinds': 'faultKinds',
};
const SWITCHES: Record<string, keyof ChaosOptionsInput> = { '--test-only-disable-fencing': 'testOnlyDisableFencing', '--keep': 'keep' };

export function parseChaosArgs(argv: readonly string[]): ChaosOptions {
  const input: Record<string, unknown> = {};
  const problems: string[] = [];
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] ?? '';
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const sw = SWITCHES[flag];
    if (sw) {
      input[sw] = inline === undefined ? true : inline === 'true';
      continue;
    }
    const key = FLAGS[flag];
    if (!key) {
      problems.push(`${arg}: unknown flag (known: ${[...Object.keys(FLAGS), ...Object.keys(SWITCHES)].join(', ')})`);
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) problems.push(`${flag}: needs a value`);
    else input[key] = value;
  }
  const parsed = chaosOptionsSchema.safeParse(input);
  if (!parsed.success) problems.push(...parsed.error.issues.map((i) => `${flagOf(String(i.path[0]))}: ${i.message}`));
  if (problems.length > 0 || !parsed.success) throw new ChaosOptionsInvalid(problems);
  return parsed.data;
}

function flagOf(key: string): string {
  return [...Object.entries(FLAGS), ...Object.entries(SWITCHES)].find(([, k]) => k === key)?.[0] ?? key;
}
