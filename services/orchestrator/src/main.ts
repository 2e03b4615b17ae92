import { hostname } from 'node:os';
import { ConfigError, createBus, createDbMetrics, createLogger, createMetricsRegistry } from '@actionedx/shared';
import { createResponseCache } from './cache-backend.js';
import { loadOrchestratorConfig, type OrchestratorConfig } from './config.js';
import { createOpsServer } from './http/ops-server.js';
import { ModelClient } from './llm/index.js';
import { createOrchestrator } from './orchestrator.js';
import { createConversationStore } from './store/index.js';
import { TaskRegistry } from './tasks/index.js';

function config(): OrchestratorConfig {
  try {
    const cfg = loadOrchestratorConfig();
    if (!cfg.NATS_URL) throw new ConfigError(['NATS_URL: required for a standalone orchestrator (`npm start` runs the embedded mode)']);
    if (!cfg.OPENAI_API_KEY && !cfg.OPENAI_BASE_URL) {
      throw new ConfigError(['OPENAI_API_KEY or OPENAI_BASE_URL: set one (OPENAI_BASE_URL for any OpenAI-compatible server)']);
    }
    return cfg;
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  }
}

const cfg = config();
const workerId = cfg.WORKER_ID ?? `${hostname()}-${process.pid}`;
const logger = createLogger({ service: 'orchestrator', level: cfg.LOG_LEVEL, ...(cfg.LOG_PRETTY === undefined ? {} : { pretty: cfg.LOG_PRETTY }) }).child({ worker_id: workerId });
const registry = createMetricsRegistry('orchestrator');

const bus = await createBus({
  natsUrl: cfg.NATS_URL,
  name: `orchestrator-${workerId}`,
  onHandlerError: (err, subject) => logger.error({ err, subject }, 'bus handler failed'),
});
bus.onStateChange((state) => logger.warn({ state }, 'bus state changed'));
const cache = createResponseCache({ redisUrl: cfg.REDIS_URL, registry, logger, name: `orchestrator-${workerId}` });
const store = await createConversationStore({
  mongoUrl: cfg.MONGO_URL,
  dbName: cfg.MONGO_DB,
  ttlDays: cfg.CONVERSATION_TTL_DAYS,
  metrics: createDbMetrics(registry),
  logger,
});
const orchestrator = createOrchestrator({
  bus,
  cache,
  store,
  model: new ModelClient({
    apiKey: cfg.OPENAI_API_KEY ?? 'not-needed',
    baseURL: cfg.OPENAI_BASE_URL,
    timeoutMs: cfg.OPENAI_TIMEOUT_MS,
    maxRetries: cfg.OPENAI_MAX_RETRIES,
  }),
  tasks: new TaskRegistry({ ttlSeconds: cfg.ttls, model: cfg.modelRoutes }),
  sharing: cfg.sharing,
  logger,
  registry,
  workerId,
  pipeline: { flightLeaseMs: cfg.FLIGHT_LEASE_MS, flightWaitMs: cfg.FLIGHT_WAIT_MS },
});
orchestrator.start();

const server = createOpsServer({ registry, ready: orchestrator.ready, health: orchestrator.health });
server.listen(cfg.PORT, cfg.HOST, () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : cfg.PORT;
  logger.info({ port, model_base_url: cfg.OPENAI_BASE_URL ?? 'https://api.openai.com/v1', cache: cache.status() }, 'listening');
});

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down');
  await orchestrator.stop(cfg.SHUTDOWN_GRACE_MS);
  await bus.close();
  await cache.close();
  await store.close();
  server.close();
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
