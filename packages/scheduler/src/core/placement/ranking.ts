import type { PlannerSettings } from '../settings.js';
import type { Resources } from '../types.js';

/**
 * Higher is better. Tight bin packing (Nomad's best-fit formula: hosts left nearly full score
 * high, so whole PCs stay empty for sleep or their owners), minus a penalty per task of the
 * same job already there (spread), plus a bonus where the task's checkpoint already lies.
 * Free room comes as numbers, as the capacity index keeps it.
 */
export function scorePlacement(
  total: Resources,
  freeCores: number,
  freeMemoryMiB: number,
  need: Resources,
  sameJobTasksOnHost: number,
  checkpointIsHere: boolean,
  settings: PlannerSettings,
): number {
  const cpuFree = total.cores > 0 ? (freeCores - need.cores) / total.cores : 0;
  const memFree = total.memoryMiB > 0 ? (freeMemoryMiB - need.memoryMiB) / total.memoryMiB : 0;
  const binpack = (20 - (10 ** cpuFree + 10 ** memFree)) / 18;
  return binpack - settings.spreadWeight * sameJobTasksOnHost + (checkpointIsHere ? settings.checkpointLocalityBonus : 0);
}
