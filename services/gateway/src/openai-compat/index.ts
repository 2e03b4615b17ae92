export { openAiRoutes, type OpenAiRoutesDeps } from './openai-routes.js';
export { ModelCatalog, TASK_ALIAS_PREFIX, type CatalogModel } from './model-catalog.js';
export { toOpenAiError, OpenAiRequestError, type OpenAiErrorBody } from './openai-errors.js';
export { bypassesCache, parseCompletionBody, toChatRequest } from './completion-request.js';
export { CompletionResponder, type CacheHeader } from './completion-responder.js';
