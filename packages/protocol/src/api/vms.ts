import { z } from 'zod';
import { pageQuerySchema, resourceNameSchema, timestampSchema, versionSchema } from './common.js';

export const VM_STATES = ['RUNNING', 'SUSPENDING', 'SUSPENDED', 'RESTORING', 'MIGRATING', 'STOPPED', 'LOST'] as const;
export type VmStateName = (typeof VM_STATES)[number];

export const VM_LIMITS = { maxVcpus: 64, minMemoryMiB: 256, maxMemoryMiB: 1_048_576, maxDiskGiB: 16_384 } as const;

const vcpus = z.int().min(1).max(VM_LIMITS.maxVcpus);
const memoryMiB = z.int().min(VM_LIMITS.minMemoryMiB).max(VM_LIMITS.maxMemoryMiB);

export const createVmSchema = z
  .object({
    /** libvirt domain name. */
    name: resourceNameSchema,
    ownerUserId: z.uuid(),
    /** Defaults to the owner's pool. */
    poolId: z.uuid().optional(),
    vcpus,
    memoryMiB,
    maxVcpus: vcpus.optional(),
    maxMemoryMiB: memoryMiB.optional(),
    diskGiB: z.int().min(1).max(VM_LIMITS.maxDiskGiB),
    diskLocation: z.string().min(1).max(1024),
  })
  .strict()
  .superRefine((b, ctx) => {
    if (b.maxVcpus !== undefined && b.maxVcpus < b.vcpus) ctx.addIssue({ code: 'custom', path: ['maxVcpus'], message: 'maxVcpus must be at least vcpus' });
    if (b.maxMemoryMiB !== undefined && b.maxMemoryMiB < b.memoryMiB) {
      ctx.addIssue({ code: 'custom', path: ['maxMemoryMiB'], message: 'maxMemoryMiB must be at least memoryMiB' });
    }
  });
export type CreateVm = z.infer<typeof createVmSchema>;

export const updateVmSchema = z
  .object({ vcpus: vcpus.optional(), memoryMiB: memoryMiB.optional(), maxVcpus: vcpus.optional(), maxMemoryMiB: memoryMiB.optional(), version: versionSchema.optional() })
  .strict()
  .refine((b) => Object.keys(b).some((k) => k !== 'version'), { message: 'nothing to update: give at least one field' });
export type UpdateVm = z.infer<typeof updateVmSchema>;

export const pinVmSchema = z
  .object({ /** Keep running until then; absent: until unpinned. */ until: z.iso.datetime({ offset: true }).optional() })
  .strict();

export const listVmsQuerySchema = pageQuerySchema.extend({
  ownerUserId: z.uuid().optional(),
  poolId: z.uuid().optional(),
  state: z.enum(VM_STATES).optional(),
});

export const vmSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  ownerUserId: z.uuid(),
  poolId: z.uuid(),
  vcpus: z.int(),
  memoryMiB: z.int(),
  maxVcpus: z.int(),
  maxMemoryMiB: z.int(),
  diskGiB: z.int(),
  diskLocation: z.string(),
  state: z.enum(VM_STATES),
  pinned: z.boolean(),
  pinnedUntil: timestampSchema.nullable(),
  currentHostId: z.uuid().nullable(),
  savedStateHostId: z.uuid().nullable(),
  savedStatePath: z.string().nullable(),
  fencingGeneration: z.int(),
  /** MIGRATING: the host it is leaving; LOST: the other host it may be on. */
  sourceHostId: z.uuid().nullable(),
  /** The host where its owner is waiting for it. */
  desiredHostId: z.uuid().nullable(),
  /** Hot-added on top of vcpus / memoryMiB. */
  augmentedVcpus: z.int(),
  augmentedMemoryMiB: z.int(),
  stateChangedAt: timestampSchema,
  version: z.int(),
  createdAt: timestampSchema,
  updatedAt: timestampSchema,
});
export type VmView = z.infer<typeof vmSchema>;
