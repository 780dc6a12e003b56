import { z } from 'zod';

/**
 * Every command the control plane can ask an agent to carry out. The list is closed: an agent
 * answers anything else with an UNKNOWN_COMMAND error frame instead of guessing.
 */
export const AGENT_COMMAND_KINDS = [
  'start',
  'suspend',
  'restore',
  'migrate-out',
  'migrate-in',
  'save-state',
  'move-state',
  'run-batch',
  'checkpoint-batch',
  'hotplug',
  'sleep-host',
] as const;
export type AgentCommandKind = (typeof AGENT_COMMAND_KINDS)[number];

const statePath = z.string().min(1).max(4096).regex(/^\//, 'must be an absolute path');

/** Which VM a command is about, with the fencing generation the control plane holds for it. */
export const commandTargetSchema = z
  .object({
    vmId: z.string().min(1).max(128),
    domainName: z.string().min(1).max(128).regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'libvirt domain name'),
    generation: z.number().int().nonnegative(),
  })
  .strict();
export type CommandTarget = z.infer<typeof commandTargetSchema>;

/**
 * A domain definition travels as an object the agent validates against the kvm-driver's
 * DomainSpec schema (the protocol does not depend on the driver package).
 */
const domainSpec = z.record(z.string(), z.unknown());

export const commandParamsSchemas = {
  /** Boots the domain, defining it first when a spec is given. */
  start: z.object({ spec: domainSpec.optional() }).strict(),
  suspend: z.object({}).strict(),
  restore: z.object({}).strict(),
  'migrate-out': z
    .object({ targetUri: z.string().min(1).max(1024), live: z.boolean().default(true), migrationUri: z.string().max(1024).optional() })
    .strict(),
  /** Confirms a live migration arrived, or restores a moved state file when statePath is given. */
  'migrate-in': z.object({ sourceHostId: z.string().min(1).max(128), statePath: statePath.optional() }).strict(),
  'save-state': z.object({ path: statePath }).strict(),
  'move-state': z.object({ path: statePath, targetHost: z.string().min(1).max(253), targetPath: statePath }).strict(),
  'run-batch': z.object({ taskId: z.string().min(1).max(128), spec: domainSpec.optional() }).strict(),
  'checkpoint-batch': z.object({ taskId: z.string().min(1).max(128), path: statePath.optional() }).strict(),
  hotplug: z
    .object({ vcpus: z.number().int().positive().max(1024).optional(), memoryMiB: z.number().int().positive().optional() })
    .strict()
    .refine((p) => p.vcpus !== undefined || p.memoryMiB !== undefined, { message: 'give vcpus or memoryMiB' }),
  'sleep-host': z.object({ mode: z.enum(['suspend', 'hibernate', 'poweroff']).default('suspend') }).strict(),
} satisfies Record<AgentCommandKind, z.ZodType>;

const idempotencyKey = z.string().min(8).max(128).regex(/^[A-Za-z0-9._:-]+$/, 'letters, digits, . _ : -');

type VmCommandKind = Exclude<AgentCommandKind, 'sleep-host'>;

const commandBase = {
  type: z.literal('command'),
  idempotencyKey,
  operationId: z.string().min(1).max(128).optional(),
};

function vmCommand<K extends VmCommandKind>(kind: K) {
  return z.object({ ...commandBase, kind: z.literal(kind), target: commandTargetSchema, params: commandParamsSchemas[kind] }).strict();
}

export const commandFrameSchema = z.discriminatedUnion('kind', [
  vmCommand('start'),
  vmCommand('suspend'),
  vmCommand('restore'),
  vmCommand('migrate-out'),
  vmCommand('migrate-in'),
  vmCommand('save-state'),
  vmCommand('move-state'),
  vmCommand('run-batch'),
  vmCommand('checkpoint-batch'),
  vmCommand('hotplug'),
  // sleep-host acts on the PC itself, not on one VM, so it has no fencing target.
  z.object({ ...commandBase, kind: z.literal('sleep-host'), target: z.undefined().optional(), params: commandParamsSchemas['sleep-host'] }).strict(),
]);
export type CommandFrame = z.infer<typeof commandFrameSchema>;
/** What a caller hands to `sendCommand`: a command frame before defaults are applied. */
export type CommandFrameInput = z.input<typeof commandFrameSchema>;

/** Just enough of a command to answer it when the rest is unreadable (e.g. an unknown kind). */
export const commandEnvelopeSchema = z.object({ type: z.literal('command'), idempotencyKey, kind: z.string() }).loose();
