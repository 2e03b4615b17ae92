export * from './registry.js';
export * from './catalog.js';
