import {
  createJobMetrics,
  createQueueDepthMetric,
  createRedisClient,
  JobEndings,
  JobEvents,
  JobStore,
  WebhookPolicy,
  WebhookQueue,
  type AiMetrics,
  type Bus,
  type Logger,
} from '@actionedx/shared';
import type { Registry } from 'prom-client';
import { AnswerMetrics, type CachedAnswers } from '../chat/index.js';
import type { OrchestratorConfig } from '../config.js';
import type { ConversationStore } from '../store/index.js';
import type { TaskRegistry } from '../tasks/index.js';
import { JobKindRegistry } from './job-kinds.js';
import { JobRunner } from './job-runner.js';
import { JobWorkers } from './job-workers.js';
import { WebhookSender } from './webhook-sender.js';

export interface JobWorkerAssemblyDeps {
  bus: Bus;
  registry: Registry;
  logger: Logger;
  workerId: string;
  /** The chat pipeline's answer path and its metrics (one set per registry). */
  answers: CachedAnswers;
  aiMetrics: AiMetrics;
  tasks: TaskRegistry;
  conversations: ConversationStore;
}

export interface AssembledJobWorkers {
  workers: JobWorkers;
  store: JobStore;
  /** Stops the workers (running jobs get `graceMs`), then the queue clients. */
  close(graceMs: number): Promise<void>;
}

/** The job workers of one process, on the queue Redis of `cfg.QUEUE_REDIS_URL`. Not started. */
export function assembleJobWorkers(cfg: OrchestratorConfig, deps: JobWorkerAssemblyDeps): AssembledJobWorkers {
  const url = cfg.QUEUE_REDIS_URL;
  if (!url) throw new Error('QUEUE_REDIS_URL is required for the jobs role');
  const logger = deps.logger.child({ component: 'jobs' });
  const redis = createRedisClient({ url, name: `job-store-${deps.workerId}`, commandTimeoutMs: 2_000, connectTimeoutMs: 2_000 });
  const store = new JobStore(redis, { retentionSeconds: cfg.JOB_RETENTION_SECONDS });
  const metrics = createJobMetrics(deps.registry);
  const webhookQueue = new WebhookQueue({
    url,
    attempts: cfg.JOB_WEBHOOK_ATTEMPTS,
    backoffMs: cfg.JOB_WEBHOOK_BACKOFF_MS,
    onError: (err) => logger.debug({ err }, 'webhook queue connection error'),
  });
  const events = new JobEvents(store, deps.bus);
  const endings = new JobEndings({ store, events, webhooks: webhookQueue });
  const runner = new JobRunner({
    store,
    events,
    endings,
    kinds: new JobKindRegistry(),
    tasks: deps.tasks,
    answers: deps.answers,
    answerMetrics: new AnswerMetrics(deps.aiMetrics),
    metrics,
    conversations: deps.conversations,
    workerId: deps.workerId,
    logger,
    rateLimitMs: cfg.JOB_RATE_LIMIT_MS,
  });
  const webhooks = new WebhookSender({
    store,
    policy: WebhookPolicy.fromList(cfg.JOB_WEBHOOK_HOSTS),
    secret: cfg.JOB_WEBHOOK_SECRET,
    timeoutMs: cfg.JOB_WEBHOOK_TIMEOUT_MS,
    metrics,
    logger,
  });
  const workers = new JobWorkers(
    { redis, redisUrl: url, store, endings, runner, webhooks, webhookQueue, bus: deps.bus, metrics, logger, workerId: deps.workerId },
    {
      concurrency: cfg.JOB_CONCURRENCY,
      lockMs: cfg.JOB_LOCK_MS,
      stalledIntervalMs: cfg.JOB_STALLED_INTERVAL_MS,
      startsPerSecond: cfg.JOB_STARTS_PER_SECOND,
    },
  );
  createQueueDepthMetric(deps.registry, () => workers.counts());
  return {
    workers,
    store,
    async close(graceMs) {
      await workers.stop(graceMs);
      await webhookQueue.close();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
