export {};
export * from './agent/index.js';
export * from './api/index.js';
export * from './job-spec.js';
