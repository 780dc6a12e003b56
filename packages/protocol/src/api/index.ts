export * from './common.js';
export * from './pools.js';
export * from './hosts.js';
export * from './users.js';
export * from './tokens.js';
export * from './vms.js';
export * from './jobs.js';
export * from './audit.js';
