export { dashboardApiRoutes, dashboardPageRoutes, type DashboardRouteDeps } from './routes.js';
export { DashboardFeed, type FeedEvent } from './feed.js';
export { FleetSampler, DEFAULT_SAMPLER, type SamplerOptions } from './sampler.js';
export { classifyPc, powerWatts, readFleet, PC_STATES, POWER_MODEL, type HostFacts, type PcState, type PcTile, type Fleet } from './fleet.js';
export { buildTimeline } from './timeline.js';
