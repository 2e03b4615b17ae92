export { createHttpApp, type HttpAppDeps } from './create-http-app.js';
export { toHttpError } from './error-mapper.js';
export { RequestTracker } from './request-context.js';
export { TASK_ENDPOINTS, type TaskEndpoint } from './task-requests.js';
export { parseInvalidateQuery } from './routes/cache-routes.js';
