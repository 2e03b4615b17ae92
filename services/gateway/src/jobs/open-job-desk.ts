import {
  createRedisClient,
  JobEndings,
  JobEvents,
  JobQueue,
  JobStore,
  WebhookPolicy,
  WebhookQueue,
  type Bus,
  type Logger,
} from '@actionedx/shared';
import { JobDesk } from './job-desk.js';
import type { GatewayJobsConfig } from './jobs-config.js';

export interface OpenedJobDesk {
  desk: JobDesk;
  close(): Promise<void>;
}

/** The job desk on the queue Redis of `config.queueRedisUrl` (required), started. */
export function openJobDesk(config: GatewayJobsConfig, deps: { bus: Bus; logger: Logger; name: string }): OpenedJobDesk {
  const url = config.queueRedisUrl;
  if (!url) throw new Error('openJobDesk needs a queue Redis URL');
  const logger = deps.logger.child({ component: 'jobs' });
  // No offline queue, short timeouts: while the queue Redis is away, submissions fail fast with 503.
  const redis = createRedisClient({ url, name: `${deps.name}-jobs`, commandTimeoutMs: 1_000, connectTimeoutMs: 1_000 });
  const store = new JobStore(redis, { retentionSeconds: config.retentionSeconds });
  const quiet = (what: string) => (err: Error) => logger.debug({ err }, `${what} connection error`);
  const queue = new JobQueue({ url, attempts: config.attempts, backoffMs: config.backoffMs, onError: quiet('job queue') });
  const webhooks = new WebhookQueue({ url, attempts: config.webhookAttempts, backoffMs: config.webhookBackoffMs, onError: quiet('webhook queue') });
  const events = new JobEvents(store, deps.bus);
  const desk = new JobDesk({
    redis,
    store,
    queue,
    webhooks,
    events,
    endings: new JobEndings({ store, events, webhooks }),
    policy: WebhookPolicy.fromList(config.webhookHosts),
    bus: deps.bus,
    logger,
  });
  desk.start();
  return {
    desk,
    async close() {
      await Promise.all([queue.close(), webhooks.close()]).catch(() => undefined);
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
