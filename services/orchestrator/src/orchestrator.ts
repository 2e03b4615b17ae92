import {
  QueueGroups,
  Subjects,
  createAiMetrics,
  createBusMetrics,
  createQueueMetrics,
  createServiceHealthMetric,
  type AiMetrics,
  type Bus,
  type Logger,
  type WorkQueue,
} from '@actionedx/shared';
import type { Registry } from 'prom-client';
import { answerAdminRequest, registerCacheAdmin, type Cache } from './cache/index.js';
import { ChatPipeline, ChatWorker } from './chat/index.js';
import { createRouterMetrics, DEFAULT_MODEL_PRICES, ModelRouter, PriceTable, type ModelPrice, type RoutingConfig } from './llm/index.js';
import { registerHistoryAdmin, type ConversationStore } from './store/index.js';
import type { TaskRegistry } from './tasks/index.js';

export interface OrchestratorDeps {
  bus: Bus;
  cache: Cache;
  store: ConversationStore;
  /** The model targets of each task type (`resolveRouting`). */
  routing: RoutingConfig;
  /** Base URL of a target that names none: OPENAI_BASE_URL, or the embedded mode's mock LLM. */
  defaultBaseUrl?: string | undefined;
  /** USD per million tokens by model. Default: `DEFAULT_MODEL_PRICES`. */
  prices?: Readonly<Record<string, ModelPrice>>;
  tasks: TaskRegistry;
  logger: Logger;
  registry: Registry;
  workerId: string;
  /** Where misses wait for a model slot (`createWorkQueue`). */
  queue: WorkQueue;
  /** Model calls at most at once on this replica (`MAX_IN_FLIGHT`). */
  maxInFlight: number;
  /** A miss runs at once in a model slot waiting on an empty queue (`QUEUE_BYPASS_WHEN_IDLE`). Default false. */
  bypassQueueWhenIdle?: boolean;
  /** Count bus frames in this registry (off when another service in the process already does). Default true. */
  busMetrics?: boolean;
}

export interface Orchestrator {
  readonly worker: ChatWorker;
  readonly pipeline: ChatPipeline;
  /** The `ai_*` metrics of this registry (job steps count there too). */
  readonly aiMetrics: AiMetrics;
  start(): void;
  ready(): boolean;
  health(): Promise<Record<string, unknown>>;
  stop(graceMs?: number): Promise<void>;
}

const HEALTH_REFRESH_MS = 10_000;

/** Wires one orchestrator replica: chat worker, cache administration, metrics. Transport-free. */
export function createOrchestrator(deps: OrchestratorDeps): Orchestrator {
  const { bus, cache, logger, registry } = deps;
  const aiMetrics = createAiMetrics(registry);
  const busMetrics = deps.busMetrics === false ? undefined : createBusMetrics(registry);
  const serviceHealth = createServiceHealthMetric(registry);
  const router = new ModelRouter(deps.routing, {
    metrics: createRouterMetrics(registry),
    upstreamErrors: aiMetrics.upstreamErrors,
    logger: logger.child({ component: 'model-router' }),
    defaultBaseUrl: deps.defaultBaseUrl,
  });
  const pipeline = new ChatPipeline({
    registry: deps.tasks,
    router,
    prices: new PriceTable(deps.prices ?? DEFAULT_MODEL_PRICES, {
      onUnpriced: (model) => logger.warn({ model }, 'model has no price: its calls are recorded at cost 0 (set MODEL_PRICES)'),
      onUnpricedCall: (model) => aiMetrics.unpriced.inc({ model }),
    }),
    flights: cache.flights,
    store: deps.store,
    metrics: aiMetrics,
    logger,
  });
  const { queue } = deps;
  const worker = new ChatWorker({
    bus,
    pipeline,
    queue,
    maxInFlight: deps.maxInFlight,
    bypassQueueWhenIdle: deps.bypassQueueWhenIdle ?? false,
    workerId: deps.workerId,
    logger,
    aiMetrics,
    queueMetrics: createQueueMetrics(registry),
    routes: router.routeModels(),
    ...(busMetrics ? { busMetrics } : {}),
  });
  let stopAdmin: (() => void) | undefined;
  let refresher: NodeJS.Timeout | undefined;
  let started = false;
  let stopping = false;
  let queueReady = false;
  let ensuring = false;
  const startedAt = Date.now();

  const ready = () => started && !stopping && queueReady && bus.state() === 'connected';

  /** The queue's stream and consumer, made (or remade, after a server lost them) until it works. */
  async function ensureQueue(): Promise<void> {
    if (ensuring) return;
    ensuring = true;
    try {
      for (let attempt = 0; !stopping; attempt++) {
        try {
          await queue.ready();
          if (!queueReady) logger.info({ queue: queue.kind, ...queue.limits }, 'work queue ready');
          queueReady = true;
          return;
        } catch (err) {
          queueReady = false;
          if (attempt % 10 === 0) logger.error({ err }, 'work queue not ready (is JetStream enabled on the NATS server?); trying again');
          await new Promise((r) => setTimeout(r, 1_000));
        }
      }
    } finally {
      ensuring = false;
    }
  }

  async function health(): Promise<Record<string, unknown>> {
    const [cacheHealth, storeHealth] = await Promise.all([cache.store.health(), deps.store.health()]);
    const busState = bus.state();
    serviceHealth.set({ component: 'bus' }, busState === 'connected' ? 1 : 0);
    serviceHealth.set({ component: 'cache' }, cacheHealth.status === 'healthy' || cacheHealth.status === 'memory' ? 1 : 0);
    serviceHealth.set({ component: 'store' }, storeHealth.status === 'unhealthy' ? 0 : 1);
    const status = !ready() ? 'unhealthy' : cacheHealth.status === 'healthy' || cacheHealth.status === 'memory' ? 'healthy' : 'degraded';
    serviceHealth.set({ component: 'orchestrator' }, status === 'unhealthy' ? 0 : 1);
    return {
      status,
      service: 'orchestrator',
      worker_id: deps.workerId,
      uptime_s: Math.round((Date.now() - startedAt) / 1000),
      in_flight: worker.inFlight,
      slots: { busy: worker.busySlots, total: deps.maxInFlight },
      dependencies: {
        nats: { status: busState, kind: bus.kind },
        queue: { status: queueReady ? 'ready' : 'unavailable', kind: queue.kind },
        cache: cacheHealth,
        store: storeHealth,
        model_targets: router.breakerStates(),
      },
    };
  }

  return {
    worker,
    pipeline,
    aiMetrics,
    start() {
      void ensureQueue();
      // After a reconnect the server may have lost the queue (a single server restarted without its store).
      bus.onStateChange((state) => {
        if (state === 'connected') void ensureQueue();
      });
      worker.start();
      const stopCacheAdmin = registerCacheAdmin(bus, cache.store, logger);
      const stopHistory = registerHistoryAdmin(bus, deps.store, logger);
      const breakers = bus.subscribe(
        Subjects.workerBreakers,
        (msg) => void answerAdminRequest(bus, msg, async () => ({ worker_id: deps.workerId, model_targets: router.breakerStates() }), logger),
        { queue: QueueGroups.orchestrators },
      );
      stopAdmin = () => {
        stopCacheAdmin();
        stopHistory();
        breakers.unsubscribe();
      };
      started = true;
      serviceHealth.set({ component: 'orchestrator' }, 1);
      // service_health stays current for alerts even when nobody asks for /health.
      refresher = setInterval(() => void health().catch(() => {}), HEALTH_REFRESH_MS);
      refresher.unref();
      logger.info({ worker_id: deps.workerId, bus: bus.kind, max_in_flight: deps.maxInFlight }, 'orchestrator taking chat jobs');
    },
    ready,
    health,
    async stop(graceMs) {
      stopping = true;
      clearInterval(refresher);
      stopAdmin?.();
      await worker.stop(graceMs);
      await queue.close();
    },
  };
}
