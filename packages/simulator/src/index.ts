export { runDemoOffice, ServicesUnavailable, BATCH_TASK, type DemoIo, type DemoRun } from './office.js';
export { formatSummary, summarize, type DemoSummary, type InvariantCheck } from './summary.js';
export { parseDemoArgs, parseDemoOptions, demoOptionsSchema, DemoOptionsInvalid, type DemoOptions, type DemoOptionsInput } from './options.js';
export { buildScenario, prng, DEMO_START_MS, type Person, type Scenario } from './scenario.js';
export { AcceleratedTime } from './time.js';
export { OfficeFabric, officeHypervisor, desktopImage, type RunInterval } from './office-hypervisor.js';
export { POWER_WATTS, percentile, mornings, doubleRuns, energy, runTime } from './metrics.js';
export { generatePresence, arrivalHistory, activityOf, habitsOf, parsePresenceCsv, formatPresenceCsv, PresenceCsvInvalid, PRESENCE_CSV_COLUMNS, type PresenceDay, type Habits, type PresenceOptions } from './presence.js';
export { generateWorkload, coreHoursOf, DEFAULT_WORKLOAD, type BatchJobPlan, type WorkloadOptions } from './workload.js';
