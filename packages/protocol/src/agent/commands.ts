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
  'reconcile',
  'delete-state',
  'stop-batch',
  'wake-host',
] as const;
export type AgentCommandKind = (typeof AGENT_COMMAND_KINDS)[number];

const taskId = z.string().min(1).max(128);
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

const domainName = commandTargetSchema.shape.domainName;

/**
 * What a fenced host may keep: every desktop and batch VM listed here, at the generation the
 * control plane holds for it. The agent stops every other running domain and reports what it found.
 */
export const reconcileExpectSchema = z
  .object({
    vms: z.array(z.object({ vmId: z.string().min(1).max(128), domainName, generation: z.number().int().nonnegative() }).strict()).max(1024),
    tasks: z.array(z.object({ taskId, domainName, generation: z.number().int().nonnegative() }).strict()).max(1024),
  })
  .strict();
export type ReconcileExpect = z.infer<typeof reconcileExpectSchema>;

/** The `result` of a succeeded reconcile: the scheduler adopts the desktops found running. */
export const reconcileResultSchema = z
  .object({
    foundRunningVmIds: z.array(z.string().min(1).max(128)).max(1024),
    foundRunningTaskIds: z.array(taskId).max(1024),
    /** Domains stopped because the control plane did not expect them on this host. */
    destroyed: z.array(domainName).max(1024),
  })
  .loose();
export type ReconcileResult = z.infer<typeof reconcileResultSchema>;

const macAddress = z.string().regex(/^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$/, 'MAC address like 52:54:00:12:34:56');

/**
 * A domain definition travels as an object the agent validates against the kvm-driver's
 * DomainSpec schema (the protocol does not depend on the driver package). What only the PC
 * knows may be left out and the agent fills it: `domainType` (kvm or qemu, from its probe) and
 * `serialLogPath` (its console directory). The agent defines the domain only when it is
 * missing on the PC: an existing (e.g. adopted) definition is never overwritten.
 */
const domainSpec = z.record(z.string(), z.unknown());

/**
 * A task of a command job, run inside the pool's standard batch guest: the agent boots its own
 * copy of the guest image with this command, environment and task index on the kernel command
 * line; the guest powers off when the command ends and prints its exit status and result.
 */
export const standardGuestTaskSchema = z
  .object({
    command: z.array(z.string().max(4096)).min(1).max(256),
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).max(128), z.string().max(32_768)).default({}),
    index: z.number().int().nonnegative(),
    vcpus: z.number().int().positive().max(256),
    memoryMiB: z.number().int().min(64),
  })
  .strict();
export type StandardGuestTask = z.infer<typeof standardGuestTaskSchema>;

export const commandParamsSchemas = {
  /** Boots the domain, defining it first when a spec is given. */
  start: z.object({ spec: domainSpec.optional() }).strict(),
  suspend: z.object({}).strict(),
  /**
   * Resumes a suspended desktop: from its managed save on this PC, or else (a desktop whose
   * saved state was moved here from another PC) from the file at `statePath`, after which the
   * domain is defined here. Fails with STATE_MISSING when neither is here.
   */
  restore: z.object({ statePath: statePath.optional() }).strict(),
  'migrate-out': z
    .object({ targetUri: z.string().min(1).max(1024), live: z.boolean().default(true), migrationUri: z.string().max(1024).optional() })
    .strict(),
  /**
   * Confirms a live migration arrived, or restores a moved state file when statePath is given.
   * The migration itself is the source PC's migrate-out (`migrateOutKey`, sent at the same
   * time); the target waits up to arrivalTimeoutSeconds for the domain to run here, and fails
   * with NOT_ARRIVED after that (0: look once).
   */
  'migrate-in': z
    .object({
      sourceHostId: z.string().min(1).max(128),
      statePath: statePath.optional(),
      migrateOutKey: z.string().min(8).max(128).optional(),
      arrivalTimeoutSeconds: z.number().int().min(0).max(86_400).default(0),
    })
    .strict(),
  'save-state': z.object({ path: statePath }).strict(),
  /**
   * Copies saved state to another PC (SFTP, checksummed): the file at `path`, or, when that is
   * not here, the domain's managed save, after which the domain is undefined on this PC (its
   * disks kept) so that it exists only where its state is.
   */
  'move-state': z.object({ path: statePath, targetHost: z.string().min(1).max(253), targetPath: statePath }).strict(),
  /**
   * Boots a batch task's VM, or resumes it: from `restoreFrom` (a checkpoint file written by
   * checkpoint-batch) when that file is on this PC, else from a managed save, else a cold boot
   * that defines the domain first from `spec` or `guest` when it is missing.
   */
  'run-batch': z
    .object({
      taskId: z.string().min(1).max(128),
      spec: domainSpec.optional(),
      guest: standardGuestTaskSchema.optional(),
      restoreFrom: statePath.optional(),
      /** Bytes of the task's console log already stored (from earlier PCs): where this PC's task-output offsets start. */
      outputOffset: z.number().int().nonnegative().optional(),
    })
    .strict()
    .refine((p) => p.spec === undefined || p.guest === undefined, { message: 'give spec or guest, not both', path: ['guest'] }),
  'checkpoint-batch': z.object({ taskId: z.string().min(1).max(128), path: statePath.optional() }).strict(),
  hotplug: z
    .object({ vcpus: z.number().int().positive().max(1024).optional(), memoryMiB: z.number().int().positive().optional() })
    .strict()
    .refine((p) => p.vcpus !== undefined || p.memoryMiB !== undefined, { message: 'give vcpus or memoryMiB' }),
  'sleep-host': z.object({ mode: z.enum(['suspend', 'hibernate', 'poweroff']).default('suspend') }).strict(),
  /** Makes the host agree with the control plane after it was fenced (invariant 1). */
  reconcile: z.object({ expect: reconcileExpectSchema }).strict(),
  /** Removes a saved-state file once a restore from another copy is confirmed (invariant 2). */
  'delete-state': z.object({ path: statePath }).strict(),
  /** Ends a batch VM without a checkpoint; `then` is what the control plane does with the task. */
  'stop-batch': z.object({ taskId, then: z.enum(['requeue', 'cancel']) }).strict(),
  /** Sent to a peer PC on the sleeping PC's network segment: it broadcasts the magic packet. */
  'wake-host': z.object({ targetHostId: z.string().min(1).max(128), mac: macAddress }).strict(),
} satisfies Record<AgentCommandKind, z.ZodType>;

const idempotencyKey = z.string().min(8).max(128).regex(/^[A-Za-z0-9._:-]+$/, 'letters, digits, . _ : -');

type HostCommandKind = 'sleep-host' | 'reconcile' | 'wake-host';
type VmCommandKind = Exclude<AgentCommandKind, HostCommandKind>;

const commandBase = {
  type: z.literal('command'),
  idempotencyKey,
  operationId: z.string().min(1).max(128).optional(),
  /**
   * Commands of the same plan this one must wait for on this host (e.g. checkpoint the batch VM
   * before restoring the desktop into its room). The agent waits until each has finished or
   * failed, at most its configured bound, then starts anyway. Sent only when non-empty, so
   * frames without ordering stay readable by agents that predate it.
   */
  after: z.array(idempotencyKey).min(1).max(64).optional(),
};

// Commands about the PC itself carry no fencing target.
function hostCommand<K extends HostCommandKind>(kind: K) {
  return z.object({ ...commandBase, kind: z.literal(kind), target: z.undefined().optional(), params: commandParamsSchemas[kind] }).strict();
}

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
  vmCommand('delete-state'),
  vmCommand('stop-batch'),
  hostCommand('sleep-host'),
  hostCommand('reconcile'),
  hostCommand('wake-host'),
]);
export type CommandFrame = z.infer<typeof commandFrameSchema>;
/** What a caller hands to `sendCommand`: a command frame before defaults are applied. */
export type CommandFrameInput = z.input<typeof commandFrameSchema>;

/** Just enough of a command to answer it when the rest is unreadable (e.g. an unknown kind). */
export const commandEnvelopeSchema = z.object({ type: z.literal('command'), idempotencyKey, kind: z.string() }).loose();
