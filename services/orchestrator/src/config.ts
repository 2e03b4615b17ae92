import { z } from 'zod';
import { CommonEnvSchema, ConfigError, env, loadConfig, TASK_TYPES, type TaskType } from '@actionedx/shared';
import { JobWorkerEnvFields } from './jobs/jobs-config.js';
import { primaryModels, resolvePrices, resolveRouting, type ModelPrice, type RoutingConfig } from './llm/index.js';
import { resolveSharing, resolveTtls, TaskRegistry, type Sharing } from './tasks/index.js';

export const OrchestratorEnvSchema = CommonEnvSchema.extend({
  PORT: env.port(8002),
  HOST: z.string().default('0.0.0.0'),
  /** Name of this replica in logs, acks and pings; default: host name and pid. */
  WORKER_ID: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/).optional(),
  OPENAI_API_KEY: z.string().optional(),
  OPENAI_BASE_URL: env.url(['http', 'https']).optional(),
  OPENAI_TIMEOUT_MS: env.ms(60_000),
  OPENAI_MAX_RETRIES: env.int(2),
  /** The model targets of each task type, as YAML or JSON (see docs/resilience.md); unset = one target per task. */
  MODEL_TARGETS_FILE: z.string().optional(),
  /** The same as JSON in the variable itself. */
  MODEL_TARGETS: z.string().optional(),
  /** Lease of a single-flight lock, renewed while the model answers: a dead replica frees its keys within it. */
  FLIGHT_LEASE_MS: env.ms(3_000),
  FLIGHT_WAIT_MS: env.ms(120_000),
  /** Lease of the flight lock a miss reserves when it is queued: identical misses follow it until a slot adopts it. */
  FLIGHT_PENDING_MS: env.ms(10_000),
  /** On SIGTERM: stop taking jobs, finish running ones within this, hand the rest back to the queue. */
  SHUTDOWN_GRACE_MS: env.ms(10_000),
  /** Model calls at most at once on this replica; further misses wait in the work queue. */
  MAX_IN_FLIGHT: z.coerce.number().int().min(1).max(1_024).default(16),
  /**
   * A miss that finds a model slot of this worker waiting on an empty queue runs in it at once, without going
   * through the queue (one JetStream round trip and one frame fewer). Off by default: such a run has no queue
   * redelivery behind it (docs/protocol.md, "The work queue").
   */
  QUEUE_BYPASS_WHEN_IDLE: env.bool(false),
  /** Jobs in the work queue at most (waiting and running, all replicas); beyond it: 503 overloaded. */
  QUEUE_MAX: z.coerce.number().int().min(1).default(2_000),
  /** Jobs of one user in the work queue at most (waiting and running): one user cannot fill it. */
  QUEUE_MAX_PER_USER: z.coerce.number().int().min(1).default(64),
  /** A worker silent this long (no progress signal) loses its job to another worker. */
  QUEUE_ACK_WAIT_MS: z.coerce.number().int().min(1_000).default(4_000),
  /** Deliveries of one job at most (a job that keeps killing its workers stops there). */
  QUEUE_MAX_DELIVER: z.coerce.number().int().min(1).max(20).default(4),
  /** Copies of the queue in a NATS cluster (1 on one server; 3 on a cluster of three). */
  QUEUE_REPLICAS: z.coerce.number().int().min(1).max(5).default(1),
  /** `memory` (fastest) or `file` (survives a restart of a single NATS server). */
  QUEUE_STORAGE: z.enum(['memory', 'file']).default('memory'),
  /** A queued job older than this is dropped by the queue (far past any request deadline). */
  QUEUE_MAX_AGE_MS: z.coerce.number().int().min(10_000).default(600_000),
  /** Conversations and the usage ledger; unset = kept in memory. */
  MONGO_URL: env.url(['mongodb', 'mongodb+srv']).optional(),
  MONGO_DB: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).default('actionedx'),
  CONVERSATION_TTL_DAYS: z.coerce.number().int().positive().default(90),
  ...Object.fromEntries(TASK_TYPES.map((t) => [`MODEL_ROUTE_${t.toUpperCase()}`, z.string().min(1).optional()])),
  /** ROLE, QUEUE_REDIS_URL and the JOB_* settings (jobs/jobs-config.ts). */
  ...JobWorkerEnvFields,
});

export type OrchestratorEnv = z.output<typeof OrchestratorEnvSchema>;

export interface OrchestratorConfig extends OrchestratorEnv {
  /** The model each task type asks for first (its route's first target; `MODEL_ROUTE_<TASK_TYPE>` by default). */
  modelRoutes: Partial<Record<TaskType, string>>;
  /** The ordered model targets of each task type, with their breakers, timeouts and retries. */
  routing: RoutingConfig;
  /** `CACHE_TTL_<TASK_TYPE>` applied to the defaults. */
  ttls: Record<TaskType, number>;
  /** `CACHE_SHARING_<TASK_TYPE>` applied to the defaults. */
  sharing: Record<TaskType, Sharing>;
  /** `MODEL_PRICES` merged over the default price list (USD per million tokens). */
  prices: Record<string, ModelPrice>;
}

/** Reads the environment once; every bad variable, of every part, is reported together. */
export function loadOrchestratorConfig(source: NodeJS.ProcessEnv = process.env): OrchestratorConfig {
  const problems: string[] = [];
  const collect = <T>(read: () => T): T | undefined => {
    try {
      return read();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(...err.problems);
      return undefined;
    }
  };
  const cfg = collect(() => loadConfig(OrchestratorEnvSchema, source));
  const ttls = collect(() => resolveTtls(source));
  const sharing = collect(() => resolveSharing(source));
  const prices = collect(() => resolvePrices(source));
  if (cfg && cfg.QUEUE_MAX_PER_USER > cfg.QUEUE_MAX) problems.push('QUEUE_MAX_PER_USER: must not exceed QUEUE_MAX');
  const envRoutes = Object.fromEntries(
    TASK_TYPES.flatMap((t) => {
      const route = source[`MODEL_ROUTE_${t.toUpperCase()}`];
      return typeof route === 'string' && route !== '' ? [[t, route]] : [];
    }),
  ) as Partial<Record<TaskType, string>>;
  const defaults = new TaskRegistry({ model: envRoutes });
  const routing = collect(() =>
    resolveRouting(source, {
      models: Object.fromEntries(defaults.all().map((p) => [p.taskType, p.model])) as Record<TaskType, string>,
      apiKey: source.OPENAI_API_KEY || undefined,
      timeoutMs: cfg?.OPENAI_TIMEOUT_MS ?? 60_000,
      maxRetries: cfg?.OPENAI_MAX_RETRIES ?? 2,
    }),
  );
  if (!cfg || !ttls || !sharing || !prices || !routing || problems.length > 0) throw new ConfigError(problems);
  return { ...cfg, modelRoutes: primaryModels(routing), routing, ttls, sharing, prices };
}
