import { z } from 'zod';
import { hostInventorySchema } from './inventory.js';
import { commandFrameSchema } from './commands.js';

const timestamp = z.iso.datetime({ offset: true });
/** Up-frames carry an increasing sequence number; the API acknowledges each one so the agent
 * knows what it may drop from its outbox. Receivers must tolerate repeats (a frame whose ack was
 * lost is sent again after a reconnect): every up-frame is safe to apply twice. */
const seq = z.number().int().positive();
/** A fencing or task generation: stored as a PostgreSQL integer, so at most 2^31 - 1. */
const generation = z.number().int().nonnegative().max(2147483647);

export const PRESENCE_STATES = ['present', 'idle'] as const;
export const PRESENCE_SOURCES = ['evdev', 'logind', 'fifo', 'trace'] as const;
export const OP_OUTCOMES = ['succeeded', 'failed', 'refused'] as const;

export const AGENT_ERROR_CODES = [
  'UNSUPPORTED_VERSION',
  'HELLO_REQUIRED',
  'MALFORMED_FRAME',
  'FRAME_TOO_LARGE',
  'UNKNOWN_FRAME_TYPE',
  'UNKNOWN_COMMAND',
  'INVALID_COMMAND',
  'NOT_YOUR_HOST',
  'UNAUTHORIZED',
  'CREDENTIAL_REVOKED',
  'INTERNAL',
] as const;
export type AgentErrorCode = (typeof AGENT_ERROR_CODES)[number];

// ---- both directions ----------------------------------------------------------------------

/** First frame on a connection, from each side. */
export const agentHelloFrameSchema = z
  .object({
    type: z.literal('hello'),
    protocolVersion: z.number().int().positive(),
    agentVersion: z.string().min(1).max(64),
  })
  .strict();

export const serverHelloFrameSchema = z
  .object({
    type: z.literal('hello'),
    protocolVersion: z.number().int().positive(),
    hostId: z.string().min(1),
    heartbeatIntervalSeconds: z.number().positive().max(3600),
  })
  .strict();

export const errorFrameSchema = z
  .object({
    type: z.literal('error'),
    code: z.enum(AGENT_ERROR_CODES),
    message: z.string().max(2000),
    /** The frame this answers, when it could be read. */
    refSeq: z.number().int().optional(),
    refIdempotencyKey: z.string().max(128).optional(),
    /** The sender closes the connection after a fatal error. */
    fatal: z.boolean().default(false),
    details: z.unknown().optional(),
  })
  .strict();
export type ErrorFrame = z.infer<typeof errorFrameSchema>;

// ---- agent → API --------------------------------------------------------------------------

export const heartbeatFrameSchema = z
  .object({ type: z.literal('heartbeat'), seq, at: timestamp, uptimeSeconds: z.number().nonnegative() })
  .strict();

export const presenceFrameSchema = z
  .object({
    type: z.literal('presence'),
    seq,
    at: timestamp,
    state: z.enum(PRESENCE_STATES),
    /** When the last activity was seen; null while present. */
    idleSince: timestamp.nullable(),
    source: z.enum(PRESENCE_SOURCES),
  })
  .strict()
  .refine((f) => (f.state === 'idle') === (f.idleSince !== null), {
    message: 'idleSince is set exactly when state is idle',
    path: ['idleSince'],
  });

export const signinFrameSchema = z
  .object({ type: z.literal('signin'), seq, at: timestamp, user: z.string().min(1).max(128).regex(/^[A-Za-z0-9._@-]+$/) })
  .strict();

export const inventoryFrameSchema = z
  .object({ type: z.literal('inventory'), seq, at: timestamp, inventory: hostInventorySchema })
  .strict();

/** Same words as the kvm-driver's DomainState: 'saved' has a managed-save image, 'missing' is not defined here. */
export const DOMAIN_STATES = ['running', 'paused', 'shutoff', 'saved', 'crashed', 'missing'] as const;
export const domainStateSchema = z
  .object({ domainName: z.string().min(1).max(128), state: z.enum(DOMAIN_STATES) })
  .strict();
export type DomainStateReport = z.infer<typeof domainStateSchema>;

export const domainStateFrameSchema = z
  .object({ type: z.literal('domain-state'), seq, at: timestamp, domains: z.array(domainStateSchema).max(1024) })
  .strict();

export const opProgressFrameSchema = z
  .object({
    type: z.literal('op-progress'),
    seq,
    at: timestamp,
    idempotencyKey: z.string().min(1).max(128),
    percent: z.number().min(0).max(100),
    message: z.string().max(500).optional(),
  })
  .strict();

export const opResultFrameSchema = z
  .object({
    type: z.literal('op-result'),
    seq,
    at: timestamp,
    idempotencyKey: z.string().min(1).max(128),
    outcome: z.enum(OP_OUTCOMES),
    /** True when the agent answered from its journal without acting again. */
    replayed: z.boolean(),
    result: z.record(z.string(), z.unknown()).optional(),
    error: z.object({ code: z.string().max(64), message: z.string().max(2000) }).strict().optional(),
  })
  .strict()
  .refine((f) => (f.outcome === 'succeeded') === (f.error === undefined), {
    message: 'error is set exactly when the outcome is not succeeded',
    path: ['error'],
  });

/**
 * Text limits of the batch frames, in UTF-16 code units as zod counts them. Kept well under the
 * frame limit (64 KiB of JSON) so escaping a console's control characters still fits; the agent
 * cuts console output into chunks of at most TASK_OUTPUT_CHUNK_BYTES of the log.
 */
export const MAX_TASK_OUTPUT_CHARS = 16 * 1024;
export const MAX_TASK_RESULT_CHARS = 8 * 1024;
export const TASK_OUTPUT_CHUNK_BYTES = 8 * 1024;

const batchTaskId = z.string().min(1).max(128);

/**
 * A piece of a batch guest's serial console, sent as the log grows. `offset` is where the piece
 * starts in the task's console log (bytes); pieces arrive in order per task. A repeat (same
 * offset, re-sent after a reconnect or an agent restart) must be ignored by the receiver, so
 * storage keys on (taskId, offset) and drops pieces that start below what it already holds.
 */
export const taskOutputFrameSchema = z
  .object({
    type: z.literal('task-output'),
    seq,
    at: timestamp,
    taskId: batchTaskId,
    generation,
    offset: z.number().int().nonnegative(),
    data: z.string().min(1).max(MAX_TASK_OUTPUT_CHARS),
  })
  .strict();

/**
 * A batch guest powered off on its own (or crashed / was killed outside a command). Never sent
 * for a checkpointed task: a saved or suspended guest has not finished. `exitCode` is null when
 * the guest did not report one (it crashed, or printed no result line).
 */
export const taskFinishedFrameSchema = z
  .object({
    type: z.literal('task-finished'),
    seq,
    at: timestamp,
    taskId: batchTaskId,
    generation,
    exitCode: z.number().int().min(-2147483648).max(2147483647).nullable(),
    /** What the guest wrote as its result (its DESKPOOL-RESULT line). */
    result: z.string().max(MAX_TASK_RESULT_CHARS).optional(),
    /** Why it ended when it did not exit on its own: e.g. crashed, killed. */
    reason: z.string().min(1).max(200).optional(),
  })
  .strict();

/** Stands in for events the agent had to drop while disconnected (its buffer is bounded). */
export const eventsDroppedFrameSchema = z
  .object({
    type: z.literal('events-dropped'),
    seq,
    at: timestamp,
    count: z.number().int().positive(),
    oldestAt: timestamp,
    newestAt: timestamp,
    countsByType: z.record(z.string(), z.number().int().nonnegative()),
  })
  .strict();

export const upFrameSchema = z.union([
  agentHelloFrameSchema,
  heartbeatFrameSchema,
  presenceFrameSchema,
  signinFrameSchema,
  inventoryFrameSchema,
  domainStateFrameSchema,
  opProgressFrameSchema,
  opResultFrameSchema,
  eventsDroppedFrameSchema,
  taskOutputFrameSchema,
  taskFinishedFrameSchema,
  errorFrameSchema,
]);
export const UP_FRAME_TYPES = [
  'hello',
  'heartbeat',
  'presence',
  'signin',
  'inventory',
  'domain-state',
  'op-progress',
  'op-result',
  'events-dropped',
  'task-output',
  'task-finished',
  'error',
] as const;

// ---- API → agent --------------------------------------------------------------------------

export const ackFrameSchema = z.object({ type: z.literal('ack'), seq }).strict();

export const downFrameSchema = z.union([serverHelloFrameSchema, commandFrameSchema, ackFrameSchema, errorFrameSchema]);
export const DOWN_FRAME_TYPES = ['hello', 'command', 'ack', 'error'] as const;

export type AgentHelloFrame = z.infer<typeof agentHelloFrameSchema>;
export type ServerHelloFrame = z.infer<typeof serverHelloFrameSchema>;
export type HeartbeatFrame = z.infer<typeof heartbeatFrameSchema>;
export type PresenceFrame = z.infer<typeof presenceFrameSchema>;
export type SigninFrame = z.infer<typeof signinFrameSchema>;
export type InventoryFrame = z.infer<typeof inventoryFrameSchema>;
export type DomainStateFrame = z.infer<typeof domainStateFrameSchema>;
export type OpProgressFrame = z.infer<typeof opProgressFrameSchema>;
export type OpResultFrame = z.infer<typeof opResultFrameSchema>;
export type EventsDroppedFrame = z.infer<typeof eventsDroppedFrameSchema>;
export type TaskOutputFrame = z.infer<typeof taskOutputFrameSchema>;
export type TaskFinishedFrame = z.infer<typeof taskFinishedFrameSchema>;
export type AckFrame = z.infer<typeof ackFrameSchema>;
export type UpFrame = z.infer<typeof upFrameSchema>;
export type DownFrame = z.infer<typeof downFrameSchema>;
/** Up-frames that carry a seq and are therefore buffered and acknowledged. */
export type SequencedUpFrame = Exclude<UpFrame, AgentHelloFrame | ErrorFrame>;
export type PresenceState = (typeof PRESENCE_STATES)[number];
export type PresenceSource = (typeof PRESENCE_SOURCES)[number];
export type OpOutcome = (typeof OP_OUTCOMES)[number];
