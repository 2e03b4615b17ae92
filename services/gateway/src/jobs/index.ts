export { callerOf } from './caller.js';
export { JobDesk, type JobDeskDeps } from './job-desk.js';
export { JobPushHub } from './job-push-hub.js';
export { jobRoutes, type JobRoutesDeps } from './job-routes.js';
export { openJobDesk, type OpenedJobDesk } from './open-job-desk.js';
export { parseJobSubmission } from './job-submission.js';
export { GatewayJobsEnvFields, gatewayJobsConfig, type GatewayJobsConfig } from './jobs-config.js';
