import { ConfigError, createLogger, createMetricsRegistry, onShutdown, readPackageVersion } from '@actionedx/shared';
import { loadMockLlmConfig, type MockLlmConfig } from './config.js';
import { createMockLlm } from './server.js';

let config: MockLlmConfig;
try {
  config = loadMockLlmConfig();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  // The logger's level is itself configuration, so config errors go straight to stderr.
  console.error(err.message);
  process.exit(1);
}

const logger = createLogger({ service: 'mock-llm', version: readPackageVersion(import.meta.url), level: config.logLevel, pretty: config.logPretty });
const mock = createMockLlm(config, { logger, registry: createMetricsRegistry('mock-llm') });
const server = await mock.listen(config.port, config.host);
logger.info({ port: server.port, url: server.url }, 'listening');

onShutdown({ logger, graceMs: 5_000, close: () => server.close() });
