import {
  ConfigError,
  createBusInBackground,
  createLogger,
  createMetricsRegistry,
  createRedisClient,
  createWorkQueue,
  onShutdown,
  type Logger,
} from '@actionedx/shared';
import { createGateway } from './app.js';
import { RedisApiKeyStore } from './auth/api-key-store.js';
import { RedisCollabStore } from './sessions/redis-collab-store.js';
import { loadGatewayConfig, type GatewayConfig } from './config.js';
import { openJobDesk } from './jobs/open-job-desk.js';
import { settledWithin } from './settled-within.js';
import { GATEWAY_VERSION } from './version.js';

/** Redis command timeout of the limiter and API-key clients (the cache's is 50 ms: it fails open). */
/**
 * How long the door's Redis clients (limiter, API keys) wait for an answer before calling Redis unavailable and
 * refusing the call. A gateway busy with a burst (2,000 WebSocket turns at once) reads replies late: at 500 ms a
 * healthy Redis was taken for gone and 241 of 2,000 turns were refused `limiter_unavailable`. A Redis that is down
 * fails at once (no offline queue); this bounds only a Redis that hangs.
 */
const DOOR_COMMAND_TIMEOUT_MS = 2_000;
/** How long a start waits for those clients to connect before listening anyway. */
const DOOR_CONNECT_WAIT_MS = 3_000;
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
  // The door fails closed (a limit or key that cannot be checked refuses the call), so its clients wait longer
  // than the cache's 50 ms before calling Redis gone: a busy Redis is not an outage. Their own connections: the
  // limiter may be another Redis, and neither queues behind cache or session traffic.
  const limiterRedis = config.limiterRedisUrl
    ? createRedisClient({ url: config.limiterRedisUrl, name: 'gateway-limiter', commandTimeoutMs: DOOR_COMMAND_TIMEOUT_MS })
    : undefined;
  const keysRedis = config.redisUrl
    ? createRedisClient({ url: config.redisUrl, name: 'gateway-keys', commandTimeoutMs: DOOR_COMMAND_TIMEOUT_MS })
    : undefined;
  const registry = createMetricsRegistry('gateway');
  // Background jobs need their own Redis (noeviction); without one, /api/jobs answers 503 jobs_unavailable.
  const jobs = config.jobs.queueRedisUrl ? openJobDesk(config.jobs, { bus, logger, name: `gateway-${config.gatewayId}` }) : undefined;
  // Publish only: the orchestrators own the queue's stream and bounds; only the ack wait matters here.
  const queue = createWorkQueue(bus, {
    limits: { maxJobs: 1, maxPerUser: 1, ackWaitMs: config.queueAckWaitMs, maxDeliver: 1, replicas: 1, maxAgeMs: 60_000 },
    storage: 'memory',
    logger,
    manage: false,
  });
  const gateway = createGateway({
    bus,
    config,
    logger,
    registry,
    sessionStore,
    queue,
    ...(redis ? { redis } : {}),
    ...(limiterRedis ? { limiterRedis } : {}),
    ...(keysRedis ? { apiKeyStore: new RedisApiKeyStore(keysRedis) } : {}),
    // Membership is never guessed: the door's client (longer timeout, fails closed) keeps the sessions.
    ...(keysRedis ? { collabStore: new RedisCollabStore(keysRedis, config.sessions.ttlSeconds) } : {}),
    ...(jobs ? { jobs: jobs.desk } : {}),
  });
  // A gateway that listened before its limiter connected would refuse its first calls: give it a moment (a
  // Redis that is down stays down, and is reported by the 503s and the metrics, not by a hanging start).
  for (const client of [limiterRedis, keysRedis]) {
    if (client === undefined || client.status === 'ready') continue;
    const ready = new Promise<boolean>((resolve) => client.once('ready', () => resolve(true)));
    if (!(await settledWithin(ready, DOOR_CONNECT_WAIT_MS))) {
      logger.warn('Redis of the limiter or API keys not connected yet: chat is refused (503) until it is');
    }
  }

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
      jobs: jobs ? 'queue Redis' : 'unavailable (no QUEUE_REDIS_URL)',
    },
    'listening',
  );

  onShutdown({
    logger,
    graceMs: config.shutdownGraceMs,
    async close() {
      await gateway.close();
      await jobs?.close();
      await bus.close();
      await redis?.quit().catch(() => redis.disconnect());
      await limiterRedis?.quit().catch(() => limiterRedis.disconnect());
      await keysRedis?.quit().catch(() => keysRedis.disconnect());
    },
  });
}

main().catch((err: unknown) => {
  console.error('gateway failed to start:', err);
  process.exit(1);
});
