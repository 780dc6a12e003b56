// What the harness tells its office and fleet processes (config files validated with zod,
// control messages over the IPC channel).
import type { RunInterval } from '@deskpool/simulator';
import { z } from 'zod';

export const officeConfigSchema = z
  .object({
    socketPath: z.string().min(1),
    /** The run's directory: the only place the office writes console logs. */
    workDir: z.string().min(1),
    pcs: z.array(z.object({ pc: z.number().int().nonnegative(), hostname: z.string() })),
    desktops: z.array(z.object({ name: z.string(), pc: z.number().int().nonnegative(), vcpus: z.number().int().positive(), memoryMiB: z.number().int().positive() })),
    cpus: z.number().int().positive(),
    memoryMiB: z.number().int().positive(),
    timings: z.record(z.string(), z.number()).optional(),
    /** Guest time each batch task's work takes. */
    taskSeconds: z.number().positive(),
  })
  .strict();
export type OfficeConfig = z.infer<typeof officeConfigSchema>;

export type OfficeControl =
  | { id: number; type: 'record'; paths: string[] }
  | { id: number; type: 'slow-disk'; pc: number; delayMs: number; durationMs: number };

export type OfficeReply =
  | { id: number; type: 'ok' }
  | { id: number; type: 'error'; message: string }
  | {
      id: number;
      type: 'record';
      intervals: RunInterval[];
      domains: { pc: number; domains: { name: string; state: string }[] }[];
      files: { pc: number; paths: string[] }[];
      guestsDone: string[];
    };

export const fleetAgentSchema = z
  .object({
    pc: z.number().int().nonnegative(),
    hostname: z.string(),
    stateDir: z.string(),
    /** ms after the agent's first start: the person at the PC in the evening. */
    evening: z.array(z.number().nonnegative()),
    /** Epoch ms of each keyboard/mouse activity in the morning (after their tap). */
    morning: z.array(z.number()),
  })
  .strict();

export const fleetConfigSchema = z
  .object({
    fleet: z.number().int().nonnegative(),
    officeSocket: z.string(),
    /** host:port of every API process; each agent's link picks them in turn. */
    apis: z.array(z.string()).min(1),
    agents: z.array(fleetAgentSchema),
    /** False on a restart after a kill: the evening is over. */
    firstStart: z.boolean(),
    partitioned: z.array(z.number().int()),
    skewMs: z.record(z.string(), z.number()),
    cpus: z.number().int().positive(),
    memoryMiB: z.number().int().positive(),
    /** Test-only: agents accept stale generations and keep what a reconcile would destroy. */
    testOnlyDisableFencing: z.boolean(),
  })
  .strict();
export type FleetConfig = z.infer<typeof fleetConfigSchema>;

export type FleetControl =
  | { id: number; type: 'cut'; pc: number | null }
  | { id: number; type: 'partition'; pc: number; on: boolean }
  | { id: number; type: 'skew'; pc: number; ms: number };

export type FleetReply = { id: number; type: 'ok' } | { id: number; type: 'error'; message: string };
