export * from './version.js';
export * from './inventory.js';
export * from './commands.js';
export * from './frames.js';
export * from './codec.js';
