import {
  ConfigError,
  createBusInBackground,
  createLogger,
  createMetricsRegistry,
  createRedisClient,
  onShutdown,
  type Logger,
} from '@actionedx/shared';
import { createGateway } from './app.js';
import { loadGatewayConfig, type GatewayConfig } from './config.js';
import { GATEWAY_VERSION } from './version.js';
import { MemorySessionStore } from './ws/memory-session-store.js';
import { RedisSessionStore } from './ws/redis-session-store.js';
import type { SessionStore } from './ws/session-store.js';

function readConfig(): GatewayConfig {
  try {
    return loadGatewayConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
}

async function main(): Promise<void> {
  const config = readConfig();
  const logger: Logger = createLogger({
    service: 'gateway',
    version: GATEWAY_VERSION,
    level: config.logLevel,
    ...(config.logPretty !== undefined ? { pretty: config.logPretty } : {}),
  });
  if (!config.natsUrl) {
    // Without NATS the bus would be in-process with no orchestrator on it: every chat would fail.
    logger.fatal(
      'NATS_URL is required to run the gateway on its own (e.g. NATS_URL=nats://127.0.0.1:4222). ' +
        'For everything in one process without NATS, run the embedded mode: npm start.',
    );
    process.exit(1);
  }

  // Listening does not wait for NATS: until it answers, /readyz says 503 and chats get bus_unavailable.
  const bus = createBusInBackground({
    natsUrl: config.natsUrl,
    name: `gateway-${config.gatewayId}`,
    onHandlerError: (err, subject) => logger.error({ err, subject }, 'bus handler failed'),
    onConnectError: (err) => logger.fatal({ err }, 'cannot connect to NATS'),
  });
  bus.onStateChange((state) => logger.warn({ state }, 'bus state changed'));
  const redis = config.redisUrl ? createRedisClient({ url: config.redisUrl, name: 'gateway' }) : undefined;
  const sessionStore: SessionStore = redis
    ? new RedisSessionStore(redis, config.wsSessionTtlSeconds, logger)
    : new MemorySessionStore(config.wsSessionTtlSeconds);
  // Its own connection: limiter commands never queue behind cache or session traffic, and it may be another Redis.
  const limiterRedis = config.limiterRedisUrl ? createRedisClient({ url: config.limiterRedisUrl, name: 'gateway-limiter' }) : undefined;
  const registry = createMetricsRegistry('gateway');
  const gateway = createGateway({
    bus,
    config,
    logger,
    registry,
    sessionStore,
    ...(redis ? { redis } : {}),
    ...(limiterRedis ? { limiterRedis } : {}),
  });

  const address = await gateway.listen();
  const ops = await gateway.listenOps();
  if (config.auth.mode === 'open') {
    logger.warn('AUTH_MODE=open: NO AUTHENTICATION. Anyone can call as any user and use the admin routes. Never expose this gateway.');
  }
  logger.info(
    {
      port: address.port,
      host: address.address,
      ops_port: ops.port,
      gateway_id: config.gatewayId,
      sessions: sessionStore.kind,
      auth: config.auth.mode,
      api_keys: gateway.apiKeys.kind,
      limiter: limiterRedis ? 'redis' : 'memory',
    },
    'listening',
  );

  onShutdown({
    logger,
    graceMs: config.shutdownGraceMs,
    async close() {
      await gateway.close();
      await bus.close();
      await redis?.quit().catch(() => redis.disconnect());
      await limiterRedis?.quit().catch(() => limiterRedis.disconnect());
    },
  });
}

main().catch((err: unknown) => {
  console.error('gateway failed to start:', err);
  process.exit(1);
});
