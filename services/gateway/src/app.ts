import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import type { Registry } from 'prom-client';
import type { WebSocketServer } from 'ws';
import { createJobSubmitMetric, createQueueDepthMetric, type Bus, type Logger, type Redis, type WorkQueue } from '@actionedx/shared';
import { OrchestratorAdmin } from './admin/orchestrator-admin.js';
import { Admission } from './admission/admission.js';
import { ConnectionSlots, MemorySlotStore, RedisSlotStore } from './admission/connection-slots.js';
import { MemoryApiKeyStore, RedisApiKeyStore, type ApiKeyStore } from './auth/api-key-store.js';
import { ApiKeys } from './auth/api-keys.js';
import { Authenticator } from './auth/authenticator.js';
import { ChatDispatcher } from './chat/chat-dispatcher.js';
import type { GatewayConfig } from './config.js';
import { HealthCheck } from './health/health-check.js';
import type { JobDesk } from './jobs/job-desk.js';
import { JobPushHub } from './jobs/job-push-hub.js';
import { createHttpApp } from './http/create-http-app.js';
import { createOpsApp } from './ops/ops-app.js';
import { RequestTracker } from './http/request-context.js';
import { createGatewayMetrics, type GatewayMetrics } from './metrics.js';
import { createAnswerLog } from './resume/create-answer-log.js';
import { ResumeDesk } from './resume/resume-desk.js';
import { settledWithin } from './settled-within.js';
import { GATEWAY_VERSION } from './version.js';
import { MemoryCollabStore } from './sessions/memory-collab-store.js';
import type { CollabStore } from './sessions/collab-store.js';
import { SessionHub } from './sessions/session-hub.js';
import { AssistantSocketServer } from './ws/assistant-socket-server.js';
import { MemorySessionStore } from './ws/memory-session-store.js';
import type { SessionStore } from './ws/session-store.js';

/** How often `service_health` is refreshed without anyone asking for /api/health. */
const HEALTH_REFRESH_MS = 10_000;
/** After the grace period, how long failed-over responses get to reach their clients. */
const FLUSH_WAIT_MS = 1_000;

export interface GatewayDeps {
  bus: Bus;
  config: GatewayConfig;
  logger: Logger;
  /** The service's registry (main: `createMetricsRegistry('gateway')`); gateway metrics are added to it. */
  registry: Registry;
  /**
   * Another registry /metrics and /api/metrics serve after the gateway's own (embedded mode: the
   * orchestrator's). Families the gateway already has are not repeated; each keeps its registry's labels.
   */
  metricsRegistry?: Registry;
  /** Default: in memory. */
  sessionStore?: SessionStore;
  /** Reported by /api/health when given; API keys are kept in it (default: in memory). */
  redis?: Redis;
  /** Background jobs (`openJobDesk`); without it `/api/jobs` answers 503 jobs_unavailable. */
  jobs?: JobDesk;
  /** The orchestrators' work queue (publish only): a job no worker acks goes there. */
  queue?: WorkQueue;
  /** Rate limits, budgets and WebSocket slots, shared by every replica (default: in this process). */
  limiterRedis?: Redis;
  /** Default: Redis when `redis` is given, else memory. */
  apiKeyStore?: ApiKeyStore;
  /** Collaboration sessions, shared by every replica (main: Redis); default: in this process. */
  collabStore?: CollabStore;
}

export interface Gateway {
  app: Express;
  /** HTTP and WebSocket on one server; not listening until `listen`. */
  server: Server;
  wss: WebSocketServer;
  dispatcher: ChatDispatcher;
  metrics: GatewayMetrics;
  authenticator: Authenticator;
  apiKeys: ApiKeys;
  admission: Admission;
  /** `/metrics` and health on their own port (OPS_PORT); not listening until `listenOps`. */
  opsServer: Server;
  /** Listen (default: the configured port and host); resolves with the actual address (port 0 → ephemeral). */
  listen(port?: number, host?: string): Promise<AddressInfo>;
  /** The ops listener (default: OPS_PORT on OPS_HOST). */
  listenOps(port?: number, host?: string): Promise<AddressInfo>;
  /**
   * Graceful stop: refuse new work, let requests and turns in flight finish up to `graceMs` (default
   * SHUTDOWN_GRACE_MS), end the rest with `shutting_down`, close sockets and the server. The bus, Redis
   * and the session store belong to the caller and stay open.
   */
  close(opts?: { graceMs?: number }): Promise<void>;
}

function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** Build the gateway (HTTP + WebSocket + chat dispatcher) on the given bus, without listening. */
export function createGateway(deps: GatewayDeps): Gateway {
  const { bus, config, logger, registry } = deps;
  const metrics = createGatewayMetrics(registry);
  const dispatcher = new ChatDispatcher({
    bus,
    gatewayId: config.gatewayId,
    ackTimeoutMs: config.ackTimeoutMs,
    heartbeatMs: config.heartbeatMs,
    requestTimeoutMs: config.requestTimeoutMs,
    maxAttempts: config.maxAttempts,
    logger,
    metrics,
    queue: deps.queue,
    queueAckWaitMs: config.queueAckWaitMs,
  });
  dispatcher.start();
  // Streamed answers are retained so that a client reconnecting to any replica resumes them (resume/).
  const resumes = new ResumeDesk({
    bus,
    log: createAnswerLog(bus, config.resume, logger),
    gatewayId: config.gatewayId,
    config: config.resume,
    silenceLimitMs: 3 * config.heartbeatMs + config.queueAckWaitMs,
    requestTimeoutMs: config.requestTimeoutMs,
    logger,
    resumes: metrics.resumes,
  });
  resumes.start();
  const admin = new OrchestratorAdmin(bus, metrics, logger);
  const health = new HealthCheck({
    bus,
    redis: deps.redis,
    admin,
    metrics,
    version: GATEWAY_VERSION,
    gatewayId: config.gatewayId,
  });
  health.startRefreshing(HEALTH_REFRESH_MS);
  // Job events for the owners with a socket or an SSE stream here, whichever gateway or worker published them.
  const jobPushes = new JobPushHub(bus, logger);
  // Registered with or without a queue Redis: refusals are counted too, and dashboards find the families.
  const jobsSubmitted = createJobSubmitMetric(registry);
  createQueueDepthMetric(registry, async () => (deps.jobs ? deps.jobs.counts() : {}));
  const edge = { ...config.edge, bodyBytes: config.bodyLimitBytes };
  const apiKeys = new ApiKeys(deps.apiKeyStore ?? (deps.redis ? new RedisApiKeyStore(deps.redis) : new MemoryApiKeyStore()), {
    cacheMs: config.auth.apiKeyCacheMs,
  });
  const authenticator = new Authenticator(config.auth, { keys: apiKeys, roles: config.roleLimits, metrics, logger });
  const admission = new Admission(deps.limiterRedis ? { kind: 'redis', redis: deps.limiterRedis } : { kind: 'memory' }, {
    metrics,
    logger,
  });
  const slots = new ConnectionSlots(deps.limiterRedis ? new RedisSlotStore(deps.limiterRedis) : new MemorySlotStore(), {
    gatewayId: config.gatewayId,
    leaseMs: edge.wsConnectionLeaseMs,
    logger,
    onError: () => metrics.admission.limiterErrors.inc({ operation: 'connection' }),
  });
  // Collaboration sessions: members, presence and the turn lock in the store; frames over the bus to every replica.
  const sessions = new SessionHub({
    bus,
    store: deps.collabStore ?? new MemoryCollabStore(),
    logger,
    metrics: metrics.sessions,
    limits: config.sessions,
    gatewayId: config.gatewayId,
  });
  sessions.start();
  const sockets = new AssistantSocketServer({
    dispatcher,
    store: deps.sessionStore ?? new MemorySessionStore(config.wsSessionTtlSeconds),
    logger,
    metrics,
    authenticator,
    admission,
    slots,
    origins: config.corsOrigins,
    edge,
    pingIntervalMs: config.wsPingIntervalMs,
    jobPushes,
    resumes,
    sessions,
  });
  metrics.measureSendBuffer(() => sockets.bufferedBytes());
  const tracker = new RequestTracker();
  const app = createHttpApp({
    dispatcher,
    admin,
    health,
    websocketStats: (viewer) => sockets.stats(viewer),
    registry,
    alsoServe: deps.metricsRegistry,
    metrics,
    logger,
    tracker,
    authenticator,
    apiKeys,
    admission,
    bodyLimitBytes: config.bodyLimitBytes,
    jsonMaxDepth: edge.jsonMaxDepth,
    corsOrigins: config.corsOrigins,
    jobs: { desk: deps.jobs, hub: jobPushes, bodyLimitBytes: config.jobs.bodyLimitBytes, submitted: jobsSubmitted },
    resumes,
    sessions,
  });
  // Slow clients are cut: headers within HTTP_HEADERS_TIMEOUT_MS (slowloris), the whole request within
  // HTTP_REQUEST_TIMEOUT_MS (slow bodies), checked every second instead of Node's default 30 s.
  const server = createServer(
    {
      headersTimeout: Math.min(edge.httpHeadersTimeoutMs, edge.httpRequestTimeoutMs),
      requestTimeout: edge.httpRequestTimeoutMs,
      keepAliveTimeout: edge.httpKeepAliveTimeoutMs,
      connectionsCheckingInterval: Math.min(1_000, edge.httpHeadersTimeoutMs),
    },
    app,
  );
  sockets.attach(server);
  const opsServer = createServer(createOpsApp({ health, registry, alsoServe: deps.metricsRegistry, logger }));

  async function shutdown(graceMs: number): Promise<void> {
    health.setDraining();
    health.stopRefreshing();
    dispatcher.stopAccepting();
    sockets.stopAccepting();
    const serverClosed = new Promise<void>((resolve) => {
      if (server.listening) server.close(() => resolve());
      else resolve();
    });
    await settledWithin(Promise.all([dispatcher.idle(), tracker.idle()]), graceMs);
    if (dispatcher.inFlight > 0) logger.warn({ in_flight: dispatcher.inFlight }, 'grace period over; ending requests');
    resumes.close();
    dispatcher.close();
    await settledWithin(tracker.idle(), FLUSH_WAIT_MS);
    await sockets.close();
    sessions.close();
    jobPushes.close();
    await settledWithin(admission.close(), FLUSH_WAIT_MS);
    server.closeAllConnections();
    await settledWithin(serverClosed, FLUSH_WAIT_MS);
    if (opsServer.listening) {
      const opsClosed = new Promise<void>((resolve) => opsServer.close(() => resolve()));
      opsServer.closeAllConnections();
      await settledWithin(opsClosed, FLUSH_WAIT_MS);
    }
  }

  let closing: Promise<void> | undefined;
  return {
    app,
    server,
    wss: sockets.wss,
    dispatcher,
    metrics,
    authenticator,
    apiKeys,
    admission,
    opsServer,
    listen: (port = config.port, host = config.host) => listen(server, port, host),
    listenOps: (port = config.opsPort, host = config.opsHost) => listen(opsServer, port, host),
    close: (opts) => (closing ??= shutdown(opts?.graceMs ?? config.shutdownGraceMs)),
  };
}
