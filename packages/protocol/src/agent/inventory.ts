import { z } from 'zod';

/** What a PC offers the pool; sent at enrollment and again whenever it changes. */
export const hostInventorySchema = z
  .object({
    hostname: z.string().min(1).max(253),
    cpuCores: z.number().int().positive().max(4096),
    cpuModel: z.string().max(256).optional(),
    // Bounded by what a PostgreSQL integer column holds (and far above any PC).
    memoryMiB: z.number().int().positive().max(2 ** 26),
    diskGiB: z.number().nonnegative().max(2 ** 30),
    gpus: z.array(z.object({ vendor: z.string().max(64), model: z.string().max(256) }).strict()).max(32),
    macAddresses: z.array(z.string().regex(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/, 'lower-case colon-separated MAC')).max(64),
    hypervisor: z
      .object({
        kvm: z.boolean(),
        libvirtVersion: z.string().max(64).nullable(),
        qemuVersion: z.string().max(64).nullable(),
        liveMigration: z.boolean(),
        hotplugCpu: z.boolean(),
        hotplugMemory: z.boolean(),
        /** libvirt URI other PCs live-migrate to this one at, e.g. qemu+ssh://root@10.0.0.7/system. */
        migrationUri: z.string().min(1).max(1024).optional(),
        /** Data channel of incoming migrations when the hostname in migrationUri does not resolve, e.g. tcp://10.0.0.7. */
        migrationDataUri: z.string().min(1).max(1024).optional(),
      })
      .strict(),
    agentVersion: z.string().min(1).max(64),
    os: z.string().max(256).optional(),
  })
  .strict();

export type HostInventory = z.infer<typeof hostInventorySchema>;

/** POST /api/v1/agent/enroll: a one-time enrollment token traded for a host credential. */
export const enrollRequestSchema = z
  .object({
    token: z.string().min(16).max(256),
    inventory: hostInventorySchema,
  })
  .strict();
export type EnrollRequest = z.infer<typeof enrollRequestSchema>;

export const enrollResponseSchema = z
  .object({
    hostId: z.string().min(1),
    hostName: z.string().min(1),
    poolId: z.string().min(1),
    /** Shown this once; the API keeps only its hash. */
    credential: z.string().min(16),
    idleThresholdSeconds: z.number().positive(),
  })
  .strict();
export type EnrollResponse = z.infer<typeof enrollResponseSchema>;
