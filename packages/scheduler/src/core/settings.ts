/** Planner-wide tuning (pool policies live in the snapshot). */
export interface PlannerSettings {
  /** Feasible hosts compared per task (power-of-k choices). */
  candidatesPerTask: number;
  /** Hosts examined per task before giving up, so cost stays flat as the fleet grows. */
  probeLimit: number;
  /** Score weight against putting many tasks of one job on one PC. */
  spreadWeight: number;
  /** Score bonus for resuming a task where its checkpoint already lies. */
  checkpointLocalityBonus: number;
  /**
   * TEST ONLY, a deliberately broken build for the chaos harness: a host that goes silent
   * counts as fenced at once (its LOST desktops STOPPED, its tasks requeued) instead of
   * waiting for its reconcile or an admin. Never set in production (see worker.ts).
   */
  testOnlyTreatLostHostsAsFenced?: boolean;
}

export const DEFAULT_SETTINGS: PlannerSettings = {
  candidatesPerTask: 2,
  probeLimit: 64,
  spreadWeight: 0.5,
  checkpointLocalityBonus: 5,
};
