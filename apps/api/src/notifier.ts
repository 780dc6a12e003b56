import type { FastifyBaseLogger } from 'fastify';

/**
 * Wake-up hints for the scheduler after a change commits. Method names match the scheduler's
 * SchedulerEvents publisher, so an instance of it can be passed as is. The database stays the
 * source of truth: a hint that cannot be published is logged, and the scheduler still finds
 * the change on its next periodic pass.
 */
export interface SchedulerNotifier {
  publishJobSubmitted(p: { jobId: string }): Promise<void>;
  publishJobCancelled(p: { jobId: string }): Promise<void>;
  publishPin(p: { vmId: string; pinned: boolean; requestId: string }): Promise<void>;
  /** An admin confirmed the host is powered off. */
  publishHostFenced(p: { hostId: string; requestId: string }): Promise<void>;
}

/** Publishes after commit; never fails the request that made the change. */
export async function notifySafely(log: FastifyBaseLogger, what: string, publish: (() => Promise<void>) | undefined): Promise<void> {
  if (!publish) return;
  try {
    await publish();
  } catch (err) {
    log.warn({ err, what }, 'could not notify the scheduler; it will see the change on its next pass');
  }
}
