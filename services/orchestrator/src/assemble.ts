import { createDbMetrics, type Bus, type Logger } from '@actionedx/shared';
import type { Registry } from 'prom-client';
import { createCache, type Cache } from './cache/index.js';
import type { OrchestratorConfig } from './config.js';
import { ModelClient } from './llm/index.js';
import { createOrchestrator, type Orchestrator } from './orchestrator.js';
import { createWorkQueue, type WorkQueue, type WorkQueueLimits } from '@actionedx/shared';
import { createConversationStore, type ConversationStore } from './store/index.js';
import { TaskRegistry } from './tasks/index.js';

export interface AssembleDeps {
  bus: Bus;
  registry: Registry;
  logger: Logger;
  workerId: string;
  /** The model server; default: OPENAI_BASE_URL (the embedded mode passes its mock LLM). */
  baseURL?: string | undefined;
  /** Count bus frames here too. Default true; off where the gateway in the same process does. */
  busMetrics?: boolean;
}

export interface AssembledOrchestrator {
  orchestrator: Orchestrator;
  cache: Cache;
  store: ConversationStore;
  queue: WorkQueue;
  /** Stops taking jobs, lets running ones finish within SHUTDOWN_GRACE_MS, closes cache and store. */
  close(): Promise<void>;
}

/** An orchestrator replica with its cache, store and model client, all from one config. Not started. */
export async function assembleOrchestrator(cfg: OrchestratorConfig, deps: AssembleDeps): Promise<AssembledOrchestrator> {
  const { bus, registry, logger, workerId } = deps;
  const cache = createCache({
    redisUrl: cfg.REDIS_URL,
    registry,
    logger,
    name: `orchestrator-${workerId}`,
    flights: { leaseMs: cfg.FLIGHT_LEASE_MS, waitMs: cfg.FLIGHT_WAIT_MS },
  });
  const store = await createConversationStore({
    mongoUrl: cfg.MONGO_URL,
    dbName: cfg.MONGO_DB,
    ttlDays: cfg.CONVERSATION_TTL_DAYS,
    metrics: createDbMetrics(registry),
    logger,
  });
  const queue = createWorkQueue(bus, { limits: queueLimits(cfg), storage: cfg.QUEUE_STORAGE, logger });
  const orchestrator = createOrchestrator({
    bus,
    queue,
    maxInFlight: cfg.MAX_IN_FLIGHT,
    cache,
    store,
    model: new ModelClient({
      apiKey: cfg.OPENAI_API_KEY ?? 'not-needed',
      baseURL: deps.baseURL ?? cfg.OPENAI_BASE_URL,
      timeoutMs: cfg.OPENAI_TIMEOUT_MS,
      maxRetries: cfg.OPENAI_MAX_RETRIES,
    }),
    prices: cfg.prices,
    tasks: new TaskRegistry({ ttlSeconds: cfg.ttls, model: cfg.modelRoutes, sharing: cfg.sharing }),
    logger,
    registry,
    workerId,
    ...(deps.busMetrics === undefined ? {} : { busMetrics: deps.busMetrics }),
  });
  return {
    orchestrator,
    cache,
    store,
    queue,
    async close() {
      await orchestrator.stop(cfg.SHUTDOWN_GRACE_MS);
      await cache.close();
      await store.close();
    },
  };
}

/** The work queue's bounds and timers from the configuration. */
export function queueLimits(cfg: OrchestratorConfig): WorkQueueLimits {
  return {
    maxJobs: cfg.QUEUE_MAX,
    maxPerUser: cfg.QUEUE_MAX_PER_USER,
    ackWaitMs: cfg.QUEUE_ACK_WAIT_MS,
    maxDeliver: cfg.QUEUE_MAX_DELIVER,
    replicas: cfg.QUEUE_REPLICAS,
    maxAgeMs: cfg.QUEUE_MAX_AGE_MS,
  };
}
