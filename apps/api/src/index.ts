export { buildApp, type AppConfig, type AppDeps } from './app.js';
export { ensureBootstrapAdminToken, BOOTSTRAP_TOKEN_NAME } from './bootstrap.js';
export { parseEnv, envSchema, ConfigError, type ApiEnv } from './config.js';
export { ApiError } from './errors.js';
export { actorOf, type Principal } from './auth.js';
export { generateSecret, hashSecret, hashesEqual, SECRET_PREFIX } from './secrets.js';
export { systemClock, type Clock } from './clock.js';
export type { RouteDeps } from './route-deps.js';
export type { SchedulerNotifier } from './notifier.js';
