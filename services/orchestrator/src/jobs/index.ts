export { assembleJobWorkers, type AssembledJobWorkers, type JobWorkerAssemblyDeps } from './assemble-jobs.js';
export { JobWorkers, waitForReady, type JobWorkersDeps, type JobWorkersOptions } from './job-workers.js';
export { JobRunner, type JobAttempt, type JobRunnerDeps } from './job-runner.js';
export { JobKindRegistry, resultOf, type JobKindSpec, type JobPlan, type PlannedStep, type StepKind } from './job-kinds.js';
export { WebhookSender, type WebhookSenderDeps } from './webhook-sender.js';
export { JobWorkerEnvFields, ROLES, type Role } from './jobs-config.js';
