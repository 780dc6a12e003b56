import type { BatchJob } from '@deskpool/db';
import type { Principal } from '../auth.js';

/** Submitters see only their own jobs; to them other jobs do not exist (404, not 403). */
export function ownedBy(p: Principal, job: BatchJob | null): job is BatchJob {
  return job !== null && (p.role === 'admin' || (p.userId !== null && job.submitterUserId === p.userId));
}
