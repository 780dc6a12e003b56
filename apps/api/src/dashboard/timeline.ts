import { MAX_TIMELINE_POINTS } from './schemas.js';

export interface StoredSample {
  at: Date;
  pcs: Record<string, number>;
  powerWatts: number;
  alwaysOnWatts: number;
  desktopsRunning: number;
  tasksRunning: number;
  tasksSucceeded: number;
}

export interface TimelinePoint extends Omit<StoredSample, 'at'> {
  at: string;
  tasksPerHour: number | null;
}

/**
 * Samples → chart points: batch throughput from the difference of the cumulative count
 * (never negative: deleting jobs lowers the count), energy by holding each sample's power
 * until the next, and at most `maxPoints` points (every n-th, always the last).
 */
export function buildTimeline(samples: StoredSample[], maxPoints = MAX_TIMELINE_POINTS): { points: TimelinePoint[]; energyKWh: number; alwaysOnKWh: number } {
  let energyKWh = 0;
  let alwaysOnKWh = 0;
  const all: TimelinePoint[] = samples.map((s, i) => {
    const prev = samples[i - 1];
    let tasksPerHour: number | null = null;
    if (prev) {
      const hours = (s.at.getTime() - prev.at.getTime()) / 3600_000;
      tasksPerHour = hours > 0 ? Math.max(0, s.tasksSucceeded - prev.tasksSucceeded) / hours : null;
      energyKWh += (prev.powerWatts * hours) / 1000;
      alwaysOnKWh += (prev.alwaysOnWatts * hours) / 1000;
    }
    return { ...s, at: s.at.toISOString(), tasksPerHour };
  });
  if (all.length <= maxPoints) return { points: all, energyKWh, alwaysOnKWh };
  const step = Math.ceil(all.length / maxPoints);
  const kept = all.filter((_p, i) => i % step === 0 || i === all.length - 1);
  // Throughput between the points kept, not between neighbours that were dropped.
  const points = kept.map((p, i) => {
    const prev = kept[i - 1];
    if (!prev) return { ...p, tasksPerHour: null };
    const hours = (Date.parse(p.at) - Date.parse(prev.at)) / 3600_000;
    return { ...p, tasksPerHour: hours > 0 ? Math.max(0, p.tasksSucceeded - prev.tasksSucceeded) / hours : null };
  });
  return { points, energyKWh, alwaysOnKWh };
}
