import type { BatchJob, Host, Resources } from '../types.js';

/** Task-level filters on one host that already accepts batch: pool, labels, resources, GPU. */
export function taskFeasibleOn(job: BatchJob, need: Resources, host: Host, free: Resources): boolean {
  if (job.poolId !== null && job.poolId !== host.poolId) return false;
  if (need.cores > free.cores || need.memoryMiB > free.memoryMiB || need.diskGiB > free.diskGiB || need.gpus > free.gpus) return false;
  for (const k in job.constraints.labels) if (host.labels[k] !== job.constraints.labels[k]) return false;
  return true;
}

/** Pool and label constraints of a job as one string, for shape keys. */
export function constraintKey(job: BatchJob): string {
  const labels = Object.keys(job.constraints.labels)
    .sort()
    .map((k) => `${k}=${job.constraints.labels[k]}`)
    .join(',');
  return `${job.poolId ?? '*'}|${labels}`;
}

/** Tasks with the same shape and constraints succeed or fail alike within one round. */
export function shapeKey(constraints: string, need: Resources): string {
  return `${constraints}|${need.cores}|${need.memoryMiB}|${need.diskGiB}|${need.gpus}`;
}
