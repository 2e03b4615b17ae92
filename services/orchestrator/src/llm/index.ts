export * from './model-client.js';
export * from './pricing.js';
