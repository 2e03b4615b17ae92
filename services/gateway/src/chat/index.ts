export * from './dispatch-types.js';
export { ChatDispatcher, type ChatDispatcherOptions } from './chat-dispatcher.js';
export { FrameRouter, type FrameTarget } from './frame-router.js';
export type { RetryReason, CancelReason } from './in-flight-request.js';
export { parseChatRequest, parseOrThrow, validationError } from './request-validation.js';
