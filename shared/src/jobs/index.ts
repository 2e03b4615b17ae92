export { splitSections } from './sections.js';
export { WebhookPolicy, DEFAULT_WEBHOOK_HOSTS, WebhookHeaders, signWebhook, verifyWebhook } from './webhook.js';
export { evictionPolicy, assertNoEviction, EvictingRedisError } from './eviction.js';
export { JobStore, type JobRecord, type JobStoreOptions, type JobUpdate, type NewJob, type StepRecord } from './job-store.js';
export { JobEvents } from './job-events.js';
export {
  JobQueue,
  WebhookQueue,
  JOB_QUEUE,
  WEBHOOK_QUEUE,
  queueConnection,
  type JobQueueOptions,
  type QueuedJobData,
  type WebhookDeliveryData,
  type WebhookQueueOptions,
  type WebhookEvent,
} from './job-queue.js';
export { JobEndings, CANCELLED_ERROR } from './job-endings.js';
export { toJobView } from './job-view.js';
export { JobsEnvFields } from './jobs-env.js';
