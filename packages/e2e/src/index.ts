export { OfficeClock } from './clock.js';
export { CounterGuest } from './guest.js';
export { startOffice, buildWorker, waitUntil, FAST_POOL_POLICY, REDIS_URL, WORKER_MAIN, type Office, type OfficeHost, type OfficeUser, type OfficeOptions, type AddHostOptions, type WorkerProcess } from './office.js';
export { watchLifecycle, type LifecycleWatch } from './libvirt-events.js';
export { testHostUp, TestHostUnavailable, type TestHost } from './testhost.js';
