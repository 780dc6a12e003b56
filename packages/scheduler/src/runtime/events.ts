// The events the scheduler consumes, as they travel on the queue: small, validated, naming
// subjects by id. The worker turns them into the core's events once the snapshot is loaded.
import { z } from 'zod';

/** BullMQ job ids may not contain ":"; event ids also seed idempotency keys, so keep them plain. */
export const eventIdSchema = z.string().min(1).max(200).regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, . _ -');
const id = z.string().min(1).max(128);

export const TIMER_KINDS = ['idleCheck', 'nightStart', 'preStage', 'power', 'morningDrain', 'placement'] as const;

export const runtimeEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('presence'), id: eventIdSchema, hostId: id, presence: z.enum(['present', 'idle']) }).strict(),
  z.object({ type: z.literal('signIn'), id: eventIdSchema, hostId: id, userId: id }).strict(),
  z.object({ type: z.literal('heartbeatLost'), id: eventIdSchema, hostId: id }).strict(),
  z.object({ type: z.literal('hostBack'), id: eventIdSchema, hostId: id }).strict(),
  z.object({ type: z.literal('hostFenced'), id: eventIdSchema, hostId: id }).strict(),
  z
    .object({
      type: z.literal('operationResult'),
      id: eventIdSchema,
      /** The operation's idempotency key, as in the agent's op-result frame. */
      idempotencyKey: id,
      outcome: z.enum(['succeeded', 'failed', 'refused']),
      /** The generation the agent acted under; the operation's own when the agent does not say. */
      generation: z.number().int().nonnegative().optional(),
      error: z.string().max(2000).optional(),
      foundRunningVmIds: z.array(id).max(10_000).optional(),
      foundRunningTaskIds: z.array(id).max(10_000).optional(),
    })
    .strict(),
  z.object({ type: z.literal('taskFinished'), id: eventIdSchema, taskId: id, generation: z.number().int().nonnegative(), outcome: z.enum(['succeeded', 'failed']) }).strict(),
  z.object({ type: z.literal('pin'), id: eventIdSchema, vmId: id, pinned: z.boolean() }).strict(),
  z.object({ type: z.literal('resourcePressure'), id: eventIdSchema, vmId: id, starved: z.boolean() }).strict(),
  z.object({ type: z.literal('jobSubmitted'), id: eventIdSchema, jobId: id }).strict(),
  z.object({ type: z.literal('jobCancelled'), id: eventIdSchema, jobId: id }).strict(),
  z.object({ type: z.literal('tick'), id: eventIdSchema, timer: z.enum(TIMER_KINDS), poolId: id }).strict(),
]);

export type RuntimeEvent = z.infer<typeof runtimeEventSchema>;
export type RuntimeEventType = RuntimeEvent['type'];

/** Makes a piece of an event id safe (ids of our own rows already are; names may not be). */
export function idPart(value: string | number): string {
  return String(value).replace(/[^A-Za-z0-9._-]/g, '_');
}

/** A bad event handed to a publisher: says which field is wrong; nothing is queued. */
export class InvalidSchedulerEventError extends Error {
  constructor(readonly issues: { path: string; message: string }[]) {
    super(`invalid scheduler event: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`);
    this.name = 'InvalidSchedulerEventError';
  }
}

export function parseRuntimeEvent(input: unknown): RuntimeEvent {
  const parsed = runtimeEventSchema.safeParse(input);
  if (!parsed.success) throw new InvalidSchedulerEventError(parsed.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })));
  return parsed.data;
}
