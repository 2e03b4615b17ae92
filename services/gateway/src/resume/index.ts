export * from './answer-log.js';
export * from './answer-replay.js';
export * from './create-answer-log.js';
export * from './jetstream-answer-log.js';
export * from './memory-answer-log.js';
export * from './resume-config.js';
export * from './resume-desk.js';
