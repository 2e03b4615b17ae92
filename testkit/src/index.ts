export * from './processes.js';
export * from './stack.js';
export * from './clients.js';
export * from './seed-client.js';
export * from './jobs.js';
