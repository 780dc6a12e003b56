import { z } from 'zod';

// Limits are deliberately generous for an office fleet but bounded, so one typo cannot ask
// for a million tasks or a terabyte of RAM.
export const JOB_LIMITS = {
  maxTasks: 10_000,
  maxCores: 256,
  maxMemoryMiB: 1_048_576,
  maxDiskGiB: 16_384,
  maxRunSeconds: 30 * 24 * 3600,
  maxRetries: 20,
  maxEnvVars: 128,
  maxLabels: 32,
} as const;

const labelSchema = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[A-Za-z0-9]([A-Za-z0-9._=-]*[A-Za-z0-9])?$/, 'labels are letters, digits and . _ = - (not at the ends)');

export const CONSTRAINT_OPERATORS = ['==', '!=', 'in', 'not_in', 'exists', 'not_exists'] as const;

/**
 * Host facts a constraint may test; anything else is refused, so a typo cannot silently match
 * nothing (or everything). `label.<name>` is a host label (`true` for a label without `=value`).
 */
export const CONSTRAINT_ATTRIBUTES = ['gpu', 'cpu.model', 'host.name'] as const;
const CONSTRAINT_ATTRIBUTE = new RegExp(`^(label\\.[A-Za-z0-9][A-Za-z0-9._-]{0,62}|${CONSTRAINT_ATTRIBUTES.map((a) => a.replace('.', '\\.')).join('|')})$`);

/** A placement rule on a host attribute, Nomad-style: `{ attribute: "gpu", operator: "==", value: "rtx4090" }`. */
export const jobConstraintSchema = z
  .object({
    attribute: z.string().min(1).max(128).regex(CONSTRAINT_ATTRIBUTE, `unknown attribute; use label.<name>, ${CONSTRAINT_ATTRIBUTES.join(', ')}`),
    operator: z.enum(CONSTRAINT_OPERATORS),
    value: z.union([z.string().max(256), z.array(z.string().max(256)).min(1).max(64)]).optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    const needsValue = c.operator !== 'exists' && c.operator !== 'not_exists';
    if (needsValue && c.value === undefined) ctx.addIssue({ code: 'custom', path: ['value'], message: `operator ${c.operator} needs a value` });
    if ((c.operator === 'in' || c.operator === 'not_in') && c.value !== undefined && !Array.isArray(c.value)) {
      ctx.addIssue({ code: 'custom', path: ['value'], message: `operator ${c.operator} needs a list of values` });
    }
  });
export type JobConstraint = z.infer<typeof jobConstraintSchema>;

/** A batch job as submitters write it (YAML or JSON in the CLI; JSON on the wire). */
export const jobSpecSchema = z
  .object({
    name: z.string().min(1).max(128).regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'job names are letters, digits and . _ - '),
    taskCount: z.int().min(1).max(JOB_LIMITS.maxTasks).default(1),
    /** A VM disk image to boot for each task ... */
    image: z.string().min(1).max(1024).optional(),
    /** ... or a command (argv) run inside the standard batch VM. */
    command: z.array(z.string().max(4096)).min(1).max(256).optional(),
    cores: z.int().min(1).max(JOB_LIMITS.maxCores).default(1),
    memoryMiB: z.int().min(64).max(JOB_LIMITS.maxMemoryMiB).default(1024),
    diskGiB: z.int().min(0).max(JOB_LIMITS.maxDiskGiB).default(0),
    gpu: z.boolean().default(false),
    /** Host labels every placement must carry. */
    labels: z.array(labelSchema).max(JOB_LIMITS.maxLabels).default([]),
    constraints: z.array(jobConstraintSchema).max(32).default([]),
    priority: z.int().min(0).max(1000).default(100),
    deadline: z.iso.datetime({ offset: true }).optional(),
    maxRunSeconds: z.int().min(1).max(JOB_LIMITS.maxRunSeconds).optional(),
    retries: z.int().min(0).max(JOB_LIMITS.maxRetries).default(2),
    /** false: preemption stops and requeues the task instead of suspending it. */
    checkpointable: z.boolean().default(true),
    env: z
      .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'environment variable names are letters, digits and _').max(128), z.string().max(32_768))
      .refine((e) => Object.keys(e).length <= JOB_LIMITS.maxEnvVars, `at most ${JOB_LIMITS.maxEnvVars} environment variables`)
      .default({}),
    /** Run only on PCs of this pool (any pool when absent). */
    poolId: z.uuid().optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (s.image === undefined && s.command === undefined) {
      ctx.addIssue({ code: 'custom', path: ['command'], message: 'give an image or a command' });
    }
    if (s.image !== undefined && s.command !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['image'], message: 'give an image or a command, not both' });
    }
  });

export type JobSpecInput = z.input<typeof jobSpecSchema>;
export type JobSpec = z.output<typeof jobSpecSchema>;
