import { createDbMetrics, type Bus, type Logger } from '@actionedx/shared';
import type { Registry } from 'prom-client';
import { createCache, type Cache } from './cache/index.js';
import type { OrchestratorConfig } from './config.js';
import { assembleJobWorkers, type AssembledJobWorkers } from './jobs/index.js';
import { createOrchestrator, type Orchestrator } from './orchestrator.js';
import { createWorkQueue, type WorkQueue, type WorkQueueLimits } from '@actionedx/shared';
import { createConversationStore, type ConversationStore } from './store/index.js';
import { TaskRegistry } from './tasks/index.js';

export interface AssembleDeps {
  bus: Bus;
  registry: Registry;
  logger: Logger;
  workerId: string;
  /** The model server of targets that name none; default: OPENAI_BASE_URL (the embedded mode passes its mock LLM). */
  baseURL?: string | undefined;
  /** Count bus frames here too. Default true; off where the gateway in the same process does. */
  busMetrics?: boolean;
  /** Build the job workers (not started). Default: when ROLE includes `jobs`. */
  jobs?: boolean;
}

export interface AssembledOrchestrator {
  orchestrator: Orchestrator;
  cache: Cache;
  store: ConversationStore;
  /** The background job workers, when this process has the `jobs` role; `start()` them (it checks the queue Redis). */
  jobs: AssembledJobWorkers | undefined;
  queue: WorkQueue;
  /** Stops taking jobs, lets running ones finish within SHUTDOWN_GRACE_MS, closes cache and store. */
  close: () => Promise<void>;
}

/** An orchestrator replica with its cache, store and model client, all from one config. Not started. */
export async function assembleOrchestrator(cfg: OrchestratorConfig, deps: AssembleDeps): Promise<AssembledOrchestrator> {
  const { bus, registry, logger, workerId } = deps;
  const cache = createCache({
    redisUrl: cfg.REDIS_URL,
    registry,
    logger,
    name: `orchestrator-${workerId}`,
    flights: { leaseMs: cfg.FLIGHT_LEASE_MS, waitMs: cfg.FLIGHT_WAIT_MS, pendingMs: cfg.FLIGHT_PENDING_MS },
  });
  const store = await createConversationStore({
    mongoUrl: cfg.MONGO_URL,
    dbName: cfg.MONGO_DB,
    ttlDays: cfg.CONVERSATION_TTL_DAYS,
    metrics: createDbMetrics(registry),
    logger,
  });
  const tasks = new TaskRegistry({ ttlSeconds: cfg.ttls, model: cfg.modelRoutes, sharing: cfg.sharing });
  const queue = createWorkQueue(bus, { limits: queueLimits(cfg), storage: cfg.QUEUE_STORAGE, logger });
  const orchestrator = createOrchestrator({
    bus,
    queue,
    maxInFlight: cfg.MAX_IN_FLIGHT,
    bypassQueueWhenIdle: cfg.QUEUE_BYPASS_WHEN_IDLE,
    cache,
    store,
    routing: cfg.routing,
    defaultBaseUrl: deps.baseURL ?? cfg.OPENAI_BASE_URL,
    prices: cfg.prices,
    tasks,
    logger,
    registry,
    workerId,
    ...(deps.busMetrics === undefined ? {} : { busMetrics: deps.busMetrics }),
  });
  const jobs = (deps.jobs ?? cfg.ROLE.includes('jobs'))
    ? assembleJobWorkers(cfg, {
        bus,
        registry,
        logger,
        workerId,
        answers: orchestrator.pipeline.answers,
        aiMetrics: orchestrator.aiMetrics,
        tasks,
        conversations: store,
      })
    : undefined;
  return {
    orchestrator,
    cache,
    store,
    jobs,
    queue,
    close: async () => {
      await Promise.all([orchestrator.stop(cfg.SHUTDOWN_GRACE_MS), jobs?.close(cfg.SHUTDOWN_GRACE_MS)]);
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
