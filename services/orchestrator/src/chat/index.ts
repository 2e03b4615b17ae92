export * from './chat-pipeline.js';
export * from './chat-worker.js';
export * from './frame-stream.js';
export * from './quality.js';
export { ModelAnswers } from './model-answers.js';
export { CachedAnswers, type CachedAnswersDeps } from './cached-answers.js';
export { AnswerMetrics } from './answer-metrics.js';
export { SessionHistory } from './session-history.js';
