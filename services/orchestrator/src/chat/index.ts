export * from './chat-pipeline.js';
export * from './chat-worker.js';
export * from './frame-stream.js';
export * from './local-flight.js';
export * from './quality.js';
