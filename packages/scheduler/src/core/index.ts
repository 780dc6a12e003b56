export * from './types.js';
export { plan } from './plan.js';
export { applyPlan } from './apply.js';
export { DEFAULT_SETTINGS, type PlannerSettings } from './settings.js';
export { defaultPolicy } from './policy.js';
export { predictArrival, readyByToday } from './prediction.js';
export { localTime, InvalidClockError, type LocalTime } from './local-time.js';
export { checkInvariants, type InvariantViolation } from './invariants.js';
export { mulberry32, seededRandom } from './placement/rng.js';
