import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { CommonEnvSchema, LIMITS, SUBJECT_TOKEN, env, loadConfig } from '@actionedx/shared';
import { GatewayJobsEnvFields, gatewayJobsConfig, type GatewayJobsConfig } from './jobs/jobs-config.js';
import { ResumeEnvFields, resumeConfig, type ResumeConfig } from './resume/resume-config.js';
import { RoleLimitsOverridesSchema, roleLimits, type CallerLimits, type EdgeLimits, type Role } from './admission/limits.js';
import type { SessionLimits } from './sessions/session-hub.js';
import {
  AUTH_MODES,
  JWT_ALGORITHMS,
  algorithmsForKey,
  isHmac,
  parsePublicKey,
  type AuthConfig,
  type AuthMode,
  type JwtAlgorithm,
} from './auth/auth-config.js';

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
  /**
   * Origins browsers may call from and open WebSockets from, comma-separated; `*` for any (not with
   * AUTH_MODE=required). Default: `*` when open, none when required.
   */
  CORS_ORIGINS: z
    .string()
    .transform((v) => v.split(',').map((o) => o.trim()).filter((o) => o.length > 0))
    .refine((list) => list.every((o) => o === '*' || /^https?:\/\/[^/\s]+$/.test(o)), 'origins are * or scheme://host[:port]')
    .optional(),
  /** This gateway's id in frame subjects; default: a random short id, fresh at each start. */
  GATEWAY_ID: z.string().regex(SUBJECT_TOKEN, 'must be 1-64 letters, digits, _ or -').max(32).optional(),

  /**
   * The orchestrators' QUEUE_ACK_WAIT_MS: how long a queued job's silent worker is given before the queue hands
   * the job to another one (the gateway waits that long before trying on its own).
   */
  QUEUE_ACK_WAIT_MS: z.coerce.number().int().min(1_000).default(4_000),
  /** QUEUE_REDIS_URL and the JOB_* settings (jobs/jobs-config.ts). */
  ...GatewayJobsEnvFields,
  /** RESUME_* (resume/resume-config.ts): retention of answers for reconnecting clients. */
  ...ResumeEnvFields,

  // ---- identity (auth/)
  /** `required` (the gateway's default) or `open` (the embedded demo's default: no authentication at all). */
  AUTH_MODE: z.enum(AUTH_MODES).optional(),
  /** HS256 signing secret of the JWTs this gateway accepts (at least 32 characters). */
  JWT_SECRET: z.string().min(32, 'must be at least 32 characters (256 bits)').optional(),
  /** A PEM public key (RSA, EC or Ed25519) the JWTs are verified with; `\n` may stand for newlines. */
  JWT_PUBLIC_KEY: z.string().optional(),
  /** An identity provider's JWKS URL; keys are fetched, cached and looked up by `kid`. */
  JWT_JWKS_URL: env.url(['https', 'http']).optional(),
  JWT_ISSUER: z.string().min(1).default('actionedx'),
  JWT_AUDIENCE: z.string().min(1).default('actionedx-api'),
  /** Accepted `alg` values, comma-separated; default: HS256 with a secret, the key's own algorithm otherwise. */
  JWT_ALGORITHMS: z
    .string()
    .transform((v) => v.split(',').map((a) => a.trim()).filter((a) => a.length > 0))
    .pipe(z.array(z.enum(JWT_ALGORITHMS, 'algorithms are HS256-512, RS256-512, PS256-512, ES256-512 or EdDSA (never none)')).min(1))
    .optional(),
  /** Leeway for `exp` and `nbf`, in seconds. */
  JWT_CLOCK_TOLERANCE_S: z.coerce.number().int().min(0).max(300).default(30),
  /** The claim naming the caller's role (`"admin"`, or an array containing it). */
  JWT_ROLE_CLAIM: z.string().min(1).default('role'),
  /** The bootstrap administrator's key (at least 32 characters): manages API keys before any exists. */
  ADMIN_API_KEY: z.string().min(32, 'must be at least 32 characters').optional(),
  /** How long a looked-up API key is trusted before asking the store again (revocations reach other replicas within it). */
  API_KEY_CACHE_MS: env.int(5_000),

  // ---- admission (admission/)
  /** Redis of the rate limits, budgets and WebSocket connection counts; default REDIS_URL; none: per process. */
  LIMITER_REDIS_URL: env.url(['redis', 'rediss']).optional(),
  /** Limits per role, JSON, merged over the defaults: `{"user": {"requests_per_minute": 30}, "admin": {...}}`. */
  RATE_LIMITS: z
    .string()
    .transform((v, ctx) => {
      try {
        return JSON.parse(v) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'is not JSON' });
        return z.NEVER;
      }
    })
    .pipe(RoleLimitsOverridesSchema)
    .optional(),
  /** Nesting levels of a body or WebSocket message (the body object itself is level 1). */
  JSON_MAX_DEPTH: z.coerce.number().int().min(4).max(256).default(LIMITS.jsonMaxDepth),
  /** Bytes queued for a WebSocket client that does not read before it is closed (1013). */
  WS_SEND_BUFFER_BYTES: z.coerce.number().int().min(16 * 1024).max(256 * 1024 * 1024).default(1024 * 1024),
  /** A replica's hold on a user's WebSocket slot, renewed while the socket lives (a dead replica's slots vanish after it). */
  WS_CONNECTION_LEASE_MS: z.coerce.number().int().min(1_000).default(60_000),
  /** Slow clients: time to send the headers, the whole request, and how long an idle keep-alive connection stays. */
  HTTP_HEADERS_TIMEOUT_MS: env.ms(10_000),
  HTTP_REQUEST_TIMEOUT_MS: env.ms(30_000),
  HTTP_KEEP_ALIVE_TIMEOUT_MS: env.ms(5_000),

  // ---- collaboration sessions
  /** Members per collaboration session, the owner included. */
  SESSION_MAX_MEMBERS: z.coerce.number().int().min(2).max(1_000).default(20),
  /** A member socket counts as online this long after its gateway last renewed it (every third of it): a dead gateway's members go offline after it. */
  SESSION_PRESENCE_TTL_MS: z.coerce.number().int().min(300).max(300_000).default(15_000),
  /** The lease of a session's turn lock, renewed while the answer streams: a dead gateway's turn frees the session after it. */
  SESSION_TURN_LEASE_MS: z.coerce.number().int().min(1_000).max(600_000).default(30_000),
  /** A collaboration session and its members are kept this long after their last use (a member joining or connecting). */
  SESSION_TTL_SECONDS: z.coerce.number().int().min(60).default(7 * 24 * 3_600),

  // ---- operations
  /** Port of /metrics and health, never the public one; 0 picks a free one. */
  OPS_PORT: env.port(9464),
  OPS_HOST: z.string().min(1).optional(),
});

type GatewayEnv = z.output<typeof GatewayEnvSchema>;

/** Checks across variables, each reported by name with the others. */
function crossCheck(e: GatewayEnv, mode: AuthMode, ctx: z.RefinementCtx): void {
  const problem = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
  const publicKey = e.JWT_PUBLIC_KEY === undefined ? undefined : parsePublicKey(e.JWT_PUBLIC_KEY);
  if (typeof publicKey === 'string') problem('JWT_PUBLIC_KEY', publicKey);
  const hasJwt = e.JWT_SECRET !== undefined || e.JWT_PUBLIC_KEY !== undefined || e.JWT_JWKS_URL !== undefined;
  if (mode === 'required' && !hasJwt && e.ADMIN_API_KEY === undefined) {
    problem('AUTH_MODE', 'required needs a way in: JWT_SECRET, JWT_PUBLIC_KEY, JWT_JWKS_URL or ADMIN_API_KEY (or AUTH_MODE=open for a demo)');
  }
  if (mode === 'required' && e.CORS_ORIGINS?.includes('*')) {
    problem('CORS_ORIGINS', 'may not be * when AUTH_MODE=required: list the origins of your web clients');
  }
  for (const alg of e.JWT_ALGORITHMS ?? []) {
    if (isHmac(alg) && e.JWT_SECRET === undefined) problem('JWT_ALGORITHMS', `${alg} needs JWT_SECRET`);
    if (!isHmac(alg) && e.JWT_PUBLIC_KEY === undefined && e.JWT_JWKS_URL === undefined) {
      problem('JWT_ALGORITHMS', `${alg} needs JWT_PUBLIC_KEY or JWT_JWKS_URL`);
    }
  }
  if (e.JWT_PUBLIC_KEY !== undefined && e.JWT_JWKS_URL !== undefined) {
    problem('JWT_JWKS_URL', 'give JWT_PUBLIC_KEY or JWT_JWKS_URL, not both');
  }
}

/** The gateway's environment schema, with the authentication mode it defaults to. */
export function gatewayEnvSchema(defaultAuthMode: AuthMode) {
  return GatewayEnvSchema.superRefine((e, ctx) => crossCheck(e, e.AUTH_MODE ?? defaultAuthMode, ctx));
}

function authConfig(e: GatewayEnv, mode: AuthMode): AuthConfig {
  const publicKey = e.JWT_PUBLIC_KEY === undefined ? undefined : parsePublicKey(e.JWT_PUBLIC_KEY);
  const key = typeof publicKey === 'string' ? undefined : publicKey;
  const hasJwt = e.JWT_SECRET !== undefined || key !== undefined || e.JWT_JWKS_URL !== undefined;
  let algorithms: JwtAlgorithm[] | undefined = e.JWT_ALGORITHMS;
  if (algorithms === undefined) {
    algorithms = [];
    if (e.JWT_SECRET !== undefined) algorithms.push('HS256');
    if (key !== undefined) algorithms.push(...algorithmsForKey(key));
    if (e.JWT_JWKS_URL !== undefined) algorithms.push('RS256', 'ES256');
  }
  return {
    mode,
    jwt: hasJwt
      ? {
          secret: e.JWT_SECRET === undefined ? undefined : new TextEncoder().encode(e.JWT_SECRET),
          publicKey: key,
          jwksUrl: e.JWT_JWKS_URL,
          issuer: e.JWT_ISSUER,
          audience: e.JWT_AUDIENCE,
          algorithms,
          clockToleranceS: e.JWT_CLOCK_TOLERANCE_S,
          roleClaim: e.JWT_ROLE_CLAIM,
        }
      : undefined,
    adminApiKey: e.ADMIN_API_KEY,
    apiKeyCacheMs: e.API_KEY_CACHE_MS,
  };
}

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
  /** Answers kept for clients that reconnect (resume/). */
  resume: ResumeConfig;
  /** Who may call (auth/). */
  auth: AuthConfig;
  /** What each role may consume (admission/); API keys may override them. */
  roleLimits: Record<Role, CallerLimits>;
  /** The limits enforced at the edge; `bodyBytes` is `bodyLimitBytes`. */
  edge: EdgeLimits;
  /** Rate limits, budgets and connection counts; undefined: in this process only. */
  limiterRedisUrl: string | undefined;
  /** Collaboration sessions: limits and timers. */
  sessions: SessionLimits & { ttlSeconds: number };
  opsPort: number;
  opsHost: string;
}

const randomGatewayId = (): string => `gw-${randomBytes(4).toString('hex')}`;

/**
 * Read and validate the environment once; throws `ConfigError` listing every bad variable. Authentication is
 * `required` unless AUTH_MODE says otherwise or the caller (the embedded mode) picks `open` as the default.
 */
export function loadGatewayConfig(
  source: NodeJS.ProcessEnv = process.env,
  opts: { defaultAuthMode?: AuthMode } = {},
): GatewayConfig {
  const defaultAuthMode = opts.defaultAuthMode ?? 'required';
  const e = loadConfig(gatewayEnvSchema(defaultAuthMode), source);
  const mode = e.AUTH_MODE ?? defaultAuthMode;
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
    corsOrigins: e.CORS_ORIGINS ?? (mode === 'open' ? ['*'] : []),
    wsSessionTtlSeconds: e.WS_SESSION_TTL_SECONDS,
    wsPingIntervalMs: e.WS_PING_INTERVAL_MS,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    jobs: gatewayJobsConfig(e),
    queueAckWaitMs: e.QUEUE_ACK_WAIT_MS,
    resume: resumeConfig(e),
    auth: authConfig(e, mode),
    roleLimits: roleLimits(e.RATE_LIMITS),
    edge: {
      bodyBytes: e.BODY_LIMIT_BYTES,
      jsonMaxDepth: e.JSON_MAX_DEPTH,
      wsSendBufferBytes: e.WS_SEND_BUFFER_BYTES,
      wsConnectionLeaseMs: e.WS_CONNECTION_LEASE_MS,
      httpHeadersTimeoutMs: e.HTTP_HEADERS_TIMEOUT_MS,
      httpRequestTimeoutMs: e.HTTP_REQUEST_TIMEOUT_MS,
      httpKeepAliveTimeoutMs: e.HTTP_KEEP_ALIVE_TIMEOUT_MS,
    },
    limiterRedisUrl: e.LIMITER_REDIS_URL ?? e.REDIS_URL,
    sessions: {
      maxMembers: e.SESSION_MAX_MEMBERS,
      presenceTtlMs: e.SESSION_PRESENCE_TTL_MS,
      turnLeaseMs: e.SESSION_TURN_LEASE_MS,
      ttlSeconds: e.SESSION_TTL_SECONDS,
    },
    opsPort: e.OPS_PORT,
    opsHost: e.OPS_HOST ?? e.HOST,
  };
}
