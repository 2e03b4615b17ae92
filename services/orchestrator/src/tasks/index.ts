export * from './task-registry.js';
export * from './build-prompt.js';
