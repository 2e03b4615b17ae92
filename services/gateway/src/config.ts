import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { CommonEnvSchema, LIMITS, SUBJECT_TOKEN, env, loadConfig } from '@actionedx/shared';
import { GatewayJobsEnvFields, gatewayJobsConfig, type GatewayJobsConfig } from './jobs/jobs-config.js';

/** The gateway's environment: the common variables plus its own, each with its default. */
export const GatewayEnvSchema = CommonEnvSchema.extend({
  /** HTTP and WebSocket port; 0 picks a free one (tests). */
  PORT: env.port(8001),
  HOST: z.string().min(1).default('0.0.0.0'),
  /** How long a worker has to acknowledge a job before it is sent once more. */
  ACK_TIMEOUT_MS: env.ms(2_000),
  /** Sent to workers in each job; a worker silent for 3× this is presumed lost. */
  HEARTBEAT_MS: env.ms(1_000),
  /** Overall deadline of a chat request; it travels to the worker as `deadline_at`. */
  REQUEST_TIMEOUT_MS: env.ms(120_000),
  /** Delivery attempts of one request in all (first try included). */
  MAX_ATTEMPTS: z.coerce.number().int().min(1).max(10).default(3),
  /** Largest HTTP body or WebSocket message accepted. */
  BODY_LIMIT_BYTES: z.coerce.number().int().min(1_024).max(16 * 1024 * 1024).default(LIMITS.bodyMaxBytes),
  /** Lifetime of a WebSocket session's metadata in the session store. */
  WS_SESSION_TTL_SECONDS: z.coerce.number().int().positive().default(3_600),
  /** Interval of WebSocket pings; a client that misses one is dropped. */
  WS_PING_INTERVAL_MS: env.ms(30_000),
  /** How long a shutdown waits for requests in flight before cutting them off. */
  SHUTDOWN_GRACE_MS: env.ms(10_000),
  /** Origins browsers may call from, comma-separated; `*` for any. */
  CORS_ORIGINS: z
    .string()
    .default('*')
    .transform((v) => v.split(',').map((o) => o.trim()).filter((o) => o.length > 0))
    .refine((list) => list.every((o) => o === '*' || /^https?:\/\/[^/\s]+$/.test(o)), 'origins are * or scheme://host[:port]'),
  /**
   * The orchestrators' QUEUE_ACK_WAIT_MS: how long a queued job's silent worker is given before the queue hands
   * the job to another one (the gateway waits that long before trying on its own).
   */
  QUEUE_ACK_WAIT_MS: z.coerce.number().int().min(1_000).default(4_000),
  /** This gateway's id in frame subjects; default: a random short id, fresh at each start. */
  GATEWAY_ID: z.string().regex(SUBJECT_TOKEN, 'must be 1-64 letters, digits, _ or -').max(32).optional(),
  /** QUEUE_REDIS_URL and the JOB_* settings (jobs/jobs-config.ts). */
  ...GatewayJobsEnvFields,
});

export interface GatewayConfig {
  nodeEnv: 'development' | 'production' | 'test';
  logLevel: string;
  logPretty: boolean | undefined;
  natsUrl: string | undefined;
  redisUrl: string | undefined;
  port: number;
  host: string;
  gatewayId: string;
  ackTimeoutMs: number;
  heartbeatMs: number;
  requestTimeoutMs: number;
  maxAttempts: number;
  bodyLimitBytes: number;
  corsOrigins: string[];
  wsSessionTtlSeconds: number;
  wsPingIntervalMs: number;
  shutdownGraceMs: number;
  /** Background jobs: the queue Redis, retries, webhooks. */
  jobs: GatewayJobsConfig;
  queueAckWaitMs: number;
}

const randomGatewayId = (): string => `gw-${randomBytes(4).toString('hex')}`;

/** Read and validate the environment once; throws `ConfigError` listing every bad variable. */
export function loadGatewayConfig(source: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const e = loadConfig(GatewayEnvSchema, source);
  return {
    nodeEnv: e.NODE_ENV,
    logLevel: e.LOG_LEVEL,
    logPretty: e.LOG_PRETTY,
    natsUrl: e.NATS_URL,
    redisUrl: e.REDIS_URL,
    port: e.PORT,
    host: e.HOST,
    gatewayId: e.GATEWAY_ID ?? randomGatewayId(),
    ackTimeoutMs: e.ACK_TIMEOUT_MS,
    heartbeatMs: e.HEARTBEAT_MS,
    requestTimeoutMs: e.REQUEST_TIMEOUT_MS,
    maxAttempts: e.MAX_ATTEMPTS,
    bodyLimitBytes: e.BODY_LIMIT_BYTES,
    corsOrigins: e.CORS_ORIGINS,
    wsSessionTtlSeconds: e.WS_SESSION_TTL_SECONDS,
    wsPingIntervalMs: e.WS_PING_INTERVAL_MS,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    jobs: gatewayJobsConfig(e),
    queueAckWaitMs: e.QUEUE_ACK_WAIT_MS,
  };
}
