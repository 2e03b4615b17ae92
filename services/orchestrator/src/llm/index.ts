export { ModelRouter, type ModelRouterDeps, type RouteRequest } from './model-router.js';
export { ModelTarget, type Completion, type Permit, type SkipReason, type TargetCall } from './model-target.js';
export { streamCompletion, type StreamRequest, type StreamedCompletion } from './completion-stream.js';
export { readSseData, type ByteStream } from './sse-events.js';
export { TokenCounter, encodingOf } from './token-counter.js';
export { UpstreamError, toUpstreamError, type UpstreamErrorKind } from './upstream-error.js';
export { createRouterMetrics, type RouterMetrics } from './router-metrics.js';
export {
  primaryModels,
  resolveRouting,
  TargetsFileSchema,
  TARGET_DEFAULTS,
  type EnvRouting,
  type RouteConfig,
  type RoutingConfig,
  type TargetConfig,
} from './targets-config.js';
export * from './pricing.js';
