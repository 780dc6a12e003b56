import type { BatchJob, Host, Resources } from '../types.js';

/** Task-level filters on one host that already accepts batch: pool, labels, resources, GPU. */
export function taskFeasibleOn(job: BatchJob, need: Resources, host: Host, free: Resources): boolean {
  if (job.poolId !== null && job.poolId !== host.poolId) return false;
  if (need.cores > free.cores || need.memoryMiB > free.memoryMiB || need.diskGiB > free.diskGiB || need.gpus > free.gpus) return false;
  for (const k in job.constraints.labels) if (host.labels[k] !== job.constraints.labels[k]) return false;
  return true;
}

/** Tasks with the same shape and constraints succeed or fail alike within one round. */
export function shapeKey(job: BatchJob, need: Resources): string {
  const labels = Object.keys(job.constraints.labels)
    .sort()
    .map((k) => `${k}=${job.constraints.labels[k]}`)
    .join(',');
  return `${job.poolId ?? '*'}|${need.cores}|${need.memoryMiB}|${need.diskGiB}|${need.gpus}|${labels}`;
}
