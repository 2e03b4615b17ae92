export * from './chat-pipeline.js';
export * from './chat-worker.js';
export * from './frame-stream.js';
export * from './quality.js';
export { ModelAnswers } from './model-answers.js';
export { SessionHistory } from './session-history.js';
