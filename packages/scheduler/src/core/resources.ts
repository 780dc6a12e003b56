import type { Resources } from './types.js';

export const NO_RESOURCES: Resources = Object.freeze({ cores: 0, memoryMiB: 0, diskGiB: 0, gpus: 0 });

export function addResources(a: Resources, b: Resources): Resources {
  return { cores: a.cores + b.cores, memoryMiB: a.memoryMiB + b.memoryMiB, diskGiB: a.diskGiB + b.diskGiB, gpus: a.gpus + b.gpus };
}

export function subtractResources(a: Resources, b: Resources): Resources {
  return { cores: a.cores - b.cores, memoryMiB: a.memoryMiB - b.memoryMiB, diskGiB: a.diskGiB - b.diskGiB, gpus: a.gpus - b.gpus };
}

/** Every dimension of `need` fits inside `room`. */
export function fits(need: Resources, room: Resources): boolean {
  return need.cores <= room.cores && need.memoryMiB <= room.memoryMiB && need.diskGiB <= room.diskGiB && need.gpus <= room.gpus;
}

export function scaleCompute(r: Resources, share: number): Resources {
  // Only cores and memory are shared out to batch while an owner works; disk and GPUs are not split.
  return { cores: Math.floor(r.cores * share), memoryMiB: Math.floor(r.memoryMiB * share), diskGiB: r.diskGiB, gpus: r.gpus };
}

export function minResources(a: Resources, b: Resources): Resources {
  return {
    cores: Math.min(a.cores, b.cores),
    memoryMiB: Math.min(a.memoryMiB, b.memoryMiB),
    diskGiB: Math.min(a.diskGiB, b.diskGiB),
    gpus: Math.min(a.gpus, b.gpus),
  };
}
