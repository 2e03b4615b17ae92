export * from './chat.js';
export * from './frames.js';
export * from './job.js';
export * from './codec.js';
export * from './cache.js';
export * from './ws.js';
export * from './jobs.js';
export * from './conversation.js';
