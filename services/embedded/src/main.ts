import { ConfigError, createLogger, createMetricsRegistry, InProcessBus, onShutdown, readPackageVersion } from '@actionedx/shared';
import { createGateway, loadGatewayConfig, openJobDesk } from '@actionedx/gateway';
import { createMockLlm, loadMockLlmConfig, type ListeningMockLlm } from '@actionedx/mock-llm';
import { assembleOrchestrator, loadOrchestratorConfig } from '@actionedx/orchestrator';

/**
 * The embedded mode: gateway and orchestrator in one process over the in-process bus, an in-memory cache
 * (Redis when REDIS_URL is set) and, without OPENAI_API_KEY, the mock LLM on a loopback port, called through
 * the same `openai` SDK code path as a real provider.
 */
/**
 * The demo's mock model streams at a human pace, so that a person sees tokens arrive: about 300 ms to the first
 * token, then 30 tokens a second. MOCK_LLM_TTFT_MS and MOCK_LLM_TOKENS_PER_SECOND (0 and 0: at once, as tests and
 * benchmarks set them) and the other MOCK_LLM_* variables of the mock's own service override it.
 */
const DEMO_PACE = { MOCK_LLM_TTFT_MS: '300', MOCK_LLM_TOKENS_PER_SECOND: '30' };

function configs() {
  // The embedded mode is the one without a bus server: a NATS_URL here would be a mistake to ignore silently.
  const env = { ...process.env };
  try {
    if (env.NATS_URL) throw new ConfigError(['NATS_URL: the embedded mode runs without NATS; use the start:gateway and start:orchestrator scripts']);
    // The demo runs open unless AUTH_MODE=required says otherwise (and it says so loudly at start).
    const mockVars = Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('MOCK_LLM_')));
    return {
      gateway: loadGatewayConfig(env, { defaultAuthMode: 'open' }),
      orchestrator: loadOrchestratorConfig({ ...env, PORT: undefined }),
      mock: loadMockLlmConfig({ ...DEMO_PACE, ...mockVars }),
    };
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  }
}

const cfg = configs();
const logger = createLogger({ service: 'actionedx', version: readPackageVersion(import.meta.url), level: cfg.gateway.logLevel, ...(cfg.gateway.logPretty === undefined ? {} : { pretty: cfg.gateway.logPretty }) });
const bus = new InProcessBus((err, subject) => logger.error({ err, subject }, 'bus handler failed'));

let mock: ListeningMockLlm | undefined;
let baseURL = cfg.orchestrator.OPENAI_BASE_URL;
if (!cfg.orchestrator.OPENAI_API_KEY && !baseURL) {
  mock = await createMockLlm(cfg.mock, { logger: logger.child({ role: 'mock-llm' }) }).listen(0, '127.0.0.1');
  baseURL = mock.url;
}

// One registry per service, both served on /metrics: the series keep their own `service` label.
const gatewayRegistry = createMetricsRegistry('gateway');
const orchestratorRegistry = createMetricsRegistry('orchestrator', { defaultMetrics: false });
// Background jobs run in this process too, but only on a queue Redis of their own (QUEUE_REDIS_URL, noeviction);
// without one, /api/jobs answers 503 jobs_unavailable and nothing else changes.
const queueRedisUrl = cfg.gateway.jobs.queueRedisUrl;
const { orchestrator, cache, store, jobs: jobWorkers, close: closeOrchestrator } = await assembleOrchestrator(cfg.orchestrator, {
  bus,
  registry: orchestratorRegistry,
  logger: logger.child({ role: 'orchestrator' }),
  workerId: 'embedded',
  baseURL,
  busMetrics: false,
  jobs: queueRedisUrl !== undefined,
});
orchestrator.start();
await jobWorkers?.workers.start().catch((err: unknown) => {
  logger.fatal({ err }, `refusing to take jobs: ${err instanceof Error ? err.message : String(err)}`);
  return process.exit(1);
});
const jobDesk = queueRedisUrl ? openJobDesk(cfg.gateway.jobs, { bus, logger: logger.child({ role: 'gateway' }), name: 'embedded' }) : undefined;

const gateway = createGateway({
  bus,
  config: cfg.gateway,
  logger: logger.child({ role: 'gateway' }),
  registry: gatewayRegistry,
  metricsRegistry: orchestratorRegistry,
  ...(jobDesk ? { jobs: jobDesk.desk } : {}),
});
const opsAddress = await gateway.listenOps();
gateway.server.listen(cfg.gateway.port, cfg.gateway.host, () => {
  const address = gateway.server.address();
  const port = typeof address === 'object' && address ? address.port : cfg.gateway.port;
  if (cfg.gateway.auth.mode === 'open') {
    logger.warn(
      '*** AUTH_MODE=open: NO AUTHENTICATION. Anyone reaching this port can call as any user and use the admin routes ' +
        '(cache invalidation, API keys, metrics). Fine for a demo on your own machine; never expose it. ' +
        'Set AUTH_MODE=required with JWT_SECRET (then `npm run token -- --user <you>`) or ADMIN_API_KEY to turn authentication on. ***',
    );
  }
  logger.info(
    {
      port,
      ops_port: opsAddress.port,
      auth: cfg.gateway.auth.mode,
      mode: 'embedded',
      bus: 'in-process',
      cache: cache.store.backend,
      store: store.backend,
      jobs: jobDesk ? 'in process, on QUEUE_REDIS_URL' : 'unavailable (set QUEUE_REDIS_URL)',
      model: mock ? `mock LLM at ${mock.url} (set OPENAI_API_KEY for a real provider)` : baseURL ?? 'https://api.openai.com/v1',
      ...(mock ? { mock_pace: { ttft_ms: cfg.mock.ttftMs, tokens_per_second: cfg.mock.tokensPerSecond } } : {}),
    },
    'listening',
  );
  const host = cfg.gateway.host === '0.0.0.0' || cfg.gateway.host === '::' ? 'localhost' : cfg.gateway.host;
  logger.info({ url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/` }, `Open http://${host.includes(':') ? `[${host}]` : host}:${port}/ in a browser: the web page (chat, sessions, jobs, operator view).`);
  logger.info(
    `ActionEDx embedded mode: one process, in-process bus, ${cache.store.backend} cache, ${store.backend} store, ${mock ? 'mock LLM' : 'real LLM'}. ` +
      (cfg.gateway.auth.mode === 'open'
        ? `Try: curl -s localhost:${port}/api/assistant/chat -H 'content-type: application/json' -d '{"user_id":"me","message":"Hello"}'`
        : `Try: curl -s localhost:${port}/api/assistant/chat -H "Authorization: Bearer $(npm run -s token -- --user me)" -H 'content-type: application/json' -d '{"message":"Hello"}'`),
  );
});

onShutdown({
  logger,
  graceMs: cfg.gateway.shutdownGraceMs,
  async close() {
    await gateway.close();
    await jobDesk?.close();
    await closeOrchestrator();
    await bus.close();
    await mock?.close();
  },
});
