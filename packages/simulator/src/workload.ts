// The batch work an office's submitters bring, seeded: when jobs arrive, how many tasks each
// has, how big and how long the tasks are, and whether they can be checkpointed.
import { mulberry32 } from '@deskpool/scheduler';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

export interface BatchJobPlan {
  /** When the submitter posts it (epoch ms). */
  submitAt: number;
  name: string;
  taskCount: number;
  cores: number;
  memoryMiB: number;
  /** CPU time each task needs before its guest finishes, ms (progress survives checkpoints). */
  workMs: number;
  checkpointable: boolean;
  priority: number;
}

export interface WorkloadOptions {
  /** Local midnight (UTC) of the first day. */
  firstDayMs: number;
  days: number;
  seed: number;
  /** Core-hours of batch work submitted per day, on average. */
  coreHoursPerDay: number;
  /** Share of jobs that may be checkpointed (the rest are stopped and requeued when preempted). */
  checkpointableShare: number;
  /** Task shapes to draw from, cores each. */
  coreChoices: readonly number[];
  /** Mean task length in hours (lengths are log-normal around it, clipped to 0.25–24 h). */
  meanTaskHours: number;
  /** Mean tasks per job (geometric). */
  meanTasksPerJob: number;
}

export const DEFAULT_WORKLOAD: Omit<WorkloadOptions, 'firstDayMs' | 'days' | 'seed' | 'coreHoursPerDay'> = {
  checkpointableShare: 0.85,
  coreChoices: [2, 4, 8],
  meanTaskHours: 6,
  meanTasksPerJob: 20,
};

/**
 * Jobs over `days` days: most are submitted in the late afternoon and evening (16:00–21:00),
 * the rest at any hour; their total work averages `coreHoursPerDay` a day. Same seed, same jobs.
 */
export function generateWorkload(options: WorkloadOptions): BatchJobPlan[] {
  const rand = mulberry32((options.seed * 0x9e3779b1 + 0x51ed) >>> 0);
  const pick = <T>(xs: readonly T[]): T => xs[Math.min(xs.length - 1, Math.floor(rand() * xs.length))] as T;
  const jobs: BatchJobPlan[] = [];
  const sigma = 0.6;
  for (let d = 0; d < options.days; d += 1) {
    let budget = options.coreHoursPerDay * (0.8 + rand() * 0.4);
    const midnight = options.firstDayMs + d * DAY;
    while (budget > 0) {
      const cores = pick(options.coreChoices);
      const z = Math.sqrt(-2 * Math.log(Math.max(rand(), 1e-12))) * Math.cos(2 * Math.PI * rand());
      const hours = Math.min(24, Math.max(0.25, options.meanTaskHours * Math.exp(sigma * z - (sigma * sigma) / 2)));
      const tasks = Math.max(1, Math.min(500, Math.ceil(-Math.log(Math.max(rand(), 1e-12)) * options.meanTasksPerJob)));
      const evening = rand() < 0.7;
      const submitAt = midnight + Math.floor(evening ? 16 * HOUR + rand() * 5 * HOUR : rand() * DAY);
      const checkpointable = rand() < options.checkpointableShare;
      jobs.push({
        submitAt,
        name: `job-${d + 1}-${jobs.length + 1}`,
        taskCount: tasks,
        cores,
        memoryMiB: cores * 1024,
        workMs: Math.round(hours * HOUR),
        checkpointable,
        priority: 50 + Math.floor(rand() * 100),
      });
      budget -= tasks * cores * hours;
    }
  }
  return jobs.sort((a, b) => a.submitAt - b.submitAt);
}

/** Core-hours a list of jobs asks for. */
export function coreHoursOf(jobs: readonly BatchJobPlan[]): number {
  return jobs.reduce((s, j) => s + (j.taskCount * j.cores * j.workMs) / HOUR, 0);
}
