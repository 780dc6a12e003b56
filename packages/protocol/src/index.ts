export {};
export * from './agent/index.js';
