import type { PlanDraft } from './draft.js';
import type { BatchJob, BatchTask } from './types.js';

export function onJobSubmitted(draft: PlanDraft, job: BatchJob, tasks: BatchTask[]): void {
  const rule = 'batch.submitted';
  // The job and its tasks may already be recorded (by the API, or by a replay of this event):
  // then only what is missing is created, and placement runs either way.
  if (!draft.get('jobs', job.id)) draft.create('jobs', job, rule);
  for (const t of tasks) {
    if (draft.get('tasks', t.id)) continue;
    draft.create('tasks', { ...t, jobId: job.id, state: 'QUEUED', hostId: null, checkpoint: null, afterStop: null }, rule);
  }
}

/** Queued work is cancelled now; running work is stopped first (never silently dropped). */
export function onJobCancelled(draft: PlanDraft, jobId: string): void {
  const rule = 'batch.cancelled';
  const job = draft.get('jobs', jobId);
  if (!job) return draft.reason('unknownJob', `No job ${jobId}`);
  if (!job.cancelled) draft.update('jobs', job.id, { cancelled: true }, rule);
  for (const t of [...draft.all('tasks')]) {
    if (t.jobId !== jobId) continue;
    if (t.state === 'QUEUED' || t.state === 'CHECKPOINTED') draft.update('tasks', t.id, { state: 'CANCELLED' }, rule);
    else if (t.state === 'RUNNING' && t.hostId) {
      const generation = t.generation + 1;
      draft.update('tasks', t.id, { state: 'STOPPING', generation, afterStop: 'cancel' }, rule);
      draft.command({ type: 'stopBatch', taskId: t.id, hostId: t.hostId, generation, then: 'cancel' }, rule);
    }
    // CHECKPOINTING/STOPPING finish first; their result sees the cancelled job.
  }
}

/** The batch VM reported its end. Failures are retried up to the job's limit. */
export function onTaskFinished(draft: PlanDraft, taskId: string, generation: number, outcome: 'succeeded' | 'failed'): void {
  const task = draft.get('tasks', taskId);
  if (!task) return draft.reason('unknownTask', `No task ${taskId}`);
  // The guest may end by itself just as it is told to yield: the yield bumped the generation,
  // the report carries the run's. Its end is real, so it counts (re-running it would waste the
  // night and, for a non-idempotent task, do its work twice); the yield's answer is then ignored.
  const currentRun = task.state === 'RUNNING' && task.generation === generation;
  const runThatWasYielding = (task.state === 'CHECKPOINTING' || task.state === 'STOPPING') && task.generation === generation + 1;
  if (!currentRun && !runThatWasYielding) return draft.reason('staleResult', `Task ${taskId} finish report is for an older run; ignored`);
  const rule = `batch.task${outcome === 'succeeded' ? 'Succeeded' : 'Failed'}`;
  for (const op of draft.operationsOn('task', task.id)) draft.remove('operations', op.id, rule);
  if (outcome === 'succeeded') {
    draft.update('tasks', task.id, { state: 'SUCCEEDED', hostId: null, afterStop: null }, rule);
    return;
  }
  if (runThatWasYielding && (task.afterStop === 'cancel' || draft.get('jobs', task.jobId)?.cancelled)) {
    draft.update('tasks', task.id, { state: 'CANCELLED', hostId: null, afterStop: null }, rule);
    return;
  }
  const job = draft.get('jobs', task.jobId);
  const attempts = task.attempts + 1;
  if (attempts > (job?.maxRetries ?? 0)) draft.update('tasks', task.id, { state: 'FAILED', hostId: null, attempts, afterStop: null }, rule);
  else draft.update('tasks', task.id, { state: 'QUEUED', hostId: null, attempts, checkpoint: null, afterStop: null }, rule);
}
