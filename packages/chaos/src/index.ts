export { runChaos, describeFault, type ChaosResult, type ChaosIo, type FaultRecord } from './run.js';
export { check, type Evidence, type Violation, type InvariantName, type DesktopEvidence, type TaskEvidence, type OperationEvidence, type AuditEvidence } from './check.js';
export { buildPlan, activityOf, FAULT_KINDS, type ChaosPlan, type Fault, type FaultKind, type PlannedPerson } from './plan.js';
export { parseChaosArgs, chaosOptionsSchema, ChaosOptionsInvalid, type ChaosOptions, type ChaosOptionsInput } from './options.js';
export { formatReport } from './report.js';
