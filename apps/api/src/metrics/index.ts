export { DeskpoolMetrics, OPERATION_BUCKETS, TAP_BUCKETS, type MetricsOptions } from './metrics.js';
export { AgentObserver, DESKTOP_ARRIVAL_KINDS } from './agent-observer.js';
export { metricsRoutes, type MetricsRouteDeps } from './routes.js';
