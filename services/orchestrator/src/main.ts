import { hostname } from 'node:os';
import { ConfigError, createBusInBackground, createLogger, createMetricsRegistry, onShutdown, readPackageVersion } from '@actionedx/shared';
import { assembleOrchestrator } from './assemble.js';
import { loadOrchestratorConfig, type OrchestratorConfig } from './config.js';
import { createOpsServer } from './http/ops-server.js';
import { redactedUrl, roleHealth } from './jobs/role-health.js';

function config(): OrchestratorConfig {
  try {
    const cfg = loadOrchestratorConfig();
    if (!cfg.NATS_URL) throw new ConfigError(['NATS_URL: required for a standalone orchestrator (`npm start` runs the embedded mode)']);
    const defaultTargetUsed = Object.values(cfg.routing.targets).some((t) => t.baseUrl === undefined);
    if (defaultTargetUsed && !cfg.OPENAI_API_KEY && !cfg.OPENAI_BASE_URL) {
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
const logger = createLogger({ service: 'orchestrator', version: readPackageVersion(import.meta.url), level: cfg.LOG_LEVEL, ...(cfg.LOG_PRETTY === undefined ? {} : { pretty: cfg.LOG_PRETTY }) }).child({ worker_id: workerId });
const registry = createMetricsRegistry('orchestrator');

// Listening does not wait for NATS: until it answers, /readyz says 503 and no job can arrive.
const bus = createBusInBackground({
  natsUrl: cfg.NATS_URL,
  name: `orchestrator-${workerId}`,
  onHandlerError: (err, subject) => logger.error({ err, subject }, 'bus handler failed'),
  onConnectError: (err) => logger.fatal({ err }, 'cannot connect to NATS'),
});
bus.onStateChange((state) => logger.warn({ state }, 'bus state changed'));
const { orchestrator, cache, jobs, close } = await assembleOrchestrator(cfg, { bus, registry, logger, workerId }).catch((err: unknown) => {
  // A store named by MONGO_URL that does not answer: stop, and let the supervisor try again.
  logger.fatal({ err }, 'could not start the orchestrator');
  return process.exit(1);
});
// A job worker on a queue Redis that evicts keys (or does not answer) would lose jobs: refuse to run at all.
await jobs?.workers.start().catch((err: unknown) => {
  logger.fatal({ err, queue_redis: redactedUrl(cfg.QUEUE_REDIS_URL) }, `refusing to take jobs: ${err instanceof Error ? err.message : String(err)}`);
  return process.exit(1);
});
const chat = cfg.ROLE.includes('chat');
if (chat) orchestrator.start();
const { ready, health } = roleHealth({ chat, orchestrator, jobs: jobs?.workers, bus });

const server = createOpsServer({ registry, ready, health });
server.listen(cfg.PORT, cfg.HOST, () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : cfg.PORT;
  const targets = Object.values(cfg.routing.targets).map((t) => `${t.name}=${t.model}@${t.baseUrl ?? cfg.OPENAI_BASE_URL ?? 'https://api.openai.com/v1'}`);
  logger.info({ port, roles: cfg.ROLE, model_targets: targets, routing: cfg.routing.source, cache: cache.store.status() }, 'listening');
});

onShutdown({
  logger,
  graceMs: cfg.SHUTDOWN_GRACE_MS,
  async close() {
    await close();
    await bus.close();
    server.close();
  },
});
