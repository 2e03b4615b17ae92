import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError, TASK_TYPES, type TaskType } from '@actionedx/shared';

/** When a target's breaker opens, and how it tries again. */
export interface BreakerConfig {
  /** Consecutive failures that open it. */
  failures: number;
  /** Also open when this share of the calls in `windowMs` failed (with at least `minCalls` calls). */
  errorRate: { threshold: number; windowMs: number; minCalls: number } | undefined;
  /** Open this long before trial calls. */
  cooldownMs: number;
  /** Trial calls at once when half open; as many successes close it. */
  probes: number;
}

/** One OpenAI-compatible endpoint and model, with its own breaker, timeouts, retries and concurrency cap. */
export interface TargetConfig {
  name: string;
  /** Undefined: OPENAI_BASE_URL, or the provider's default. */
  baseUrl: string | undefined;
  model: string;
  /** The variable the key was read from (for messages; the key itself is never logged). */
  apiKeyEnv: string | undefined;
  apiKey: string;
  /** Time to the response headers, per HTTP attempt (the SDK's timeout). */
  requestTimeoutMs: number;
  firstTokenTimeoutMs: number;
  stallTimeoutMs: number;
  /** Retries on this target before the first token (429, 5xx, connection errors). */
  maxRetries: number;
  /** A `retry-after` longer than this is not waited for: the call moves on. */
  maxRetryDelayMs: number;
  /** Calls at once; 0 = no cap. A full target is skipped. */
  maxConcurrency: number;
  breaker: BreakerConfig;
}

export interface RouteTarget {
  name: string;
  /** Entries with a weight next to each other share traffic in proportion; the others stay in place. */
  weight: number | undefined;
}

export interface RouteConfig {
  /** Tried in this order (after weighting). */
  targets: RouteTarget[];
  /** Start the next target too when the first has sent no token after this long. */
  hedgeAfterMs: number | undefined;
  /** An answer that fails the quality check gets one more try on the next target. */
  qualityFallback: boolean;
}

export interface RoutingConfig {
  /** Where it came from: the environment's single targets, a file, or MODEL_TARGETS. */
  source: 'env' | 'file' | 'json';
  targets: Record<string, TargetConfig>;
  routes: Record<TaskType, RouteConfig>;
}

const positiveMs = z.number().int().positive();

const BreakerSchema = z.strictObject({
  failures: z.number().int().positive().optional(),
  error_rate: z.number().gt(0).max(1).optional(),
  window_ms: positiveMs.optional(),
  min_calls: z.number().int().positive().optional(),
  cooldown_ms: positiveMs.optional(),
  probes: z.number().int().positive().max(100).optional(),
});

const TunablesSchema = z.strictObject({
  request_timeout_ms: positiveMs.optional(),
  first_token_timeout_ms: positiveMs.optional(),
  stall_timeout_ms: positiveMs.optional(),
  max_retries: z.number().int().min(0).max(10).optional(),
  max_retry_delay_ms: z.number().int().min(0).optional(),
  max_concurrency: z.number().int().min(0).optional(),
  breaker: BreakerSchema.optional(),
});
type Tunables = z.output<typeof TunablesSchema>;

const TargetSchema = TunablesSchema.extend({
  base_url: z.url({ protocol: /^https?$/ }).optional(),
  model: z.string().min(1).max(200),
  /** The key is read from this variable: never written in the file. */
  api_key_env: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be the name of an environment variable')
    .optional(),
});

const TARGET_NAME = /^[A-Za-z0-9_.:-]{1,64}$/;

const RouteSchema = z.strictObject({
  targets: z
    .array(z.union([z.string(), z.strictObject({ target: z.string(), weight: z.number().positive().optional() })]))
    .min(1, 'needs at least one target'),
  hedge_after_ms: positiveMs.optional(),
  quality_fallback: z.boolean().optional(),
});

export const TargetsFileSchema = z.strictObject({
  defaults: TunablesSchema.optional(),
  targets: z.record(z.string().regex(TARGET_NAME, 'target names are 1-64 of A-Z a-z 0-9 _ . : -'), TargetSchema),
  routes: z.partialRecord(z.enum(TASK_TYPES), RouteSchema).optional(),
});
export type TargetsFile = z.output<typeof TargetsFileSchema>;

/** Built-in values of everything a target may leave out. */
export const TARGET_DEFAULTS = {
  requestTimeoutMs: 60_000,
  firstTokenTimeoutMs: 30_000,
  stallTimeoutMs: 30_000,
  maxRetries: 1,
  maxRetryDelayMs: 5_000,
  maxConcurrency: 0,
  breaker: { failures: 5, errorRate: 0.5, windowMs: 60_000, minCalls: 20, cooldownMs: 30_000, probes: 1 },
} as const;

/** What the environment says about the one target per task type of the default configuration. */
export interface EnvRouting {
  /** `MODEL_ROUTE_<TASK_TYPE>`, over the task registry's defaults. */
  models: Record<TaskType, string>;
  apiKey: string | undefined;
  /** `OPENAI_TIMEOUT_MS`: the first-token timeout too, as the SDK's timeout was the only one. */
  timeoutMs: number;
  /** `OPENAI_MAX_RETRIES` */
  maxRetries: number;
}

/**
 * The routing table: `MODEL_TARGETS_FILE` (YAML or JSON) or `MODEL_TARGETS` (JSON), else one target per model
 * of the task registry at OPENAI_BASE_URL, which is today's behaviour. Task types a file leaves out keep
 * their default target. Every problem is a line of one `ConfigError`.
 */
export function resolveRouting(source: Readonly<Record<string, string | undefined>>, base: EnvRouting): RoutingConfig {
  const file = source.MODEL_TARGETS_FILE?.trim();
  const inline = source.MODEL_TARGETS?.trim();
  if (file && inline) throw new ConfigError(['MODEL_TARGETS_FILE, MODEL_TARGETS: set one of them, not both']);
  const defaults = defaultRouting(base);
  if (!file && !inline) return defaults;
  const label = file ? `MODEL_TARGETS_FILE (${file})` : 'MODEL_TARGETS';
  const raw = file ? readTargetsFile(file, label) : parseText(inline!, label, 'json');
  const parsed = TargetsFileSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${label} ${i.path.map(String).join('.') || '(root)'}: ${i.message}`));
  }
  return fromFile(parsed.data, defaults, source, label, file ? 'file' : 'json');
}

function readTargetsFile(path: string, label: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError([`${label}: cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
  return parseText(text, label, /\.json$/i.test(path) ? 'json' : 'yaml');
}

function parseText(text: string, label: string, format: 'json' | 'yaml'): unknown {
  try {
    return format === 'json' ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ConfigError([`${label}: not valid ${format.toUpperCase()} (${err instanceof Error ? err.message.split('\n')[0] : 'parse error'})`]);
  }
}

/** One target per distinct model, named after it, at OPENAI_BASE_URL with OPENAI_API_KEY. */
function defaultRouting(base: EnvRouting): RoutingConfig {
  const targets: Record<string, TargetConfig> = {};
  for (const model of new Set(Object.values(base.models))) {
    targets[model] = {
      ...settle({}, undefined, model),
      model,
      baseUrl: undefined,
      apiKeyEnv: 'OPENAI_API_KEY',
      apiKey: base.apiKey ?? 'not-needed',
      requestTimeoutMs: base.timeoutMs,
      firstTokenTimeoutMs: base.timeoutMs,
      maxRetries: base.maxRetries,
    };
  }
  const routes = Object.fromEntries(
    TASK_TYPES.map((t) => [t, { targets: [{ name: base.models[t], weight: undefined }], hedgeAfterMs: undefined, qualityFallback: true }]),
  ) as Record<TaskType, RouteConfig>;
  return { source: 'env', targets, routes };
}

function fromFile(
  file: TargetsFile,
  defaults: RoutingConfig,
  env: Readonly<Record<string, string | undefined>>,
  label: string,
  source: 'file' | 'json',
): RoutingConfig {
  const problems: string[] = [];
  const targets: Record<string, TargetConfig> = {};
  for (const [name, t] of Object.entries(file.targets)) {
    let apiKey = 'not-needed';
    if (t.api_key_env !== undefined) {
      const key = env[t.api_key_env];
      if (key === undefined || key === '') problems.push(`${label} targets.${name}.api_key_env: ${t.api_key_env} is not set`);
      else apiKey = key;
    }
    targets[name] = { ...settle(t, file.defaults, name), model: t.model, baseUrl: t.base_url, apiKeyEnv: t.api_key_env, apiKey };
  }
  const routes = { ...defaults.routes };
  for (const [task, route] of Object.entries(file.routes ?? {}) as [TaskType, z.output<typeof RouteSchema>][]) {
    const entries = route.targets.map((e) => (typeof e === 'string' ? { name: e, weight: undefined } : { name: e.target, weight: e.weight }));
    entries.forEach((e, i) => {
      if (!targets[e.name]) problems.push(`${label} routes.${task}.targets.${i}: unknown target "${e.name}"`);
      else if (entries.findIndex((o) => o.name === e.name) !== i) problems.push(`${label} routes.${task}.targets.${i}: "${e.name}" is listed twice`);
    });
    routes[task] = { targets: entries, hedgeAfterMs: route.hedge_after_ms, qualityFallback: route.quality_fallback ?? true };
  }
  // Task types the file leaves out keep their default target (named after its model); a file target of that
  // name takes its place.
  for (const t of TASK_TYPES) {
    if (file.routes?.[t]) continue;
    const name = defaults.routes[t].targets[0]!.name;
    targets[name] ??= defaults.targets[name]!;
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return { source, targets, routes };
}

/** A target's tunables: its own, else the file's defaults, else the built-in ones. */
function settle(own: Tunables, shared: Tunables | undefined, name: string): Omit<TargetConfig, 'model' | 'baseUrl' | 'apiKeyEnv' | 'apiKey'> {
  const d = TARGET_DEFAULTS;
  const b = { ...shared?.breaker, ...own.breaker };
  const rate = b.error_rate ?? d.breaker.errorRate;
  return {
    name,
    requestTimeoutMs: own.request_timeout_ms ?? shared?.request_timeout_ms ?? d.requestTimeoutMs,
    firstTokenTimeoutMs: own.first_token_timeout_ms ?? shared?.first_token_timeout_ms ?? d.firstTokenTimeoutMs,
    stallTimeoutMs: own.stall_timeout_ms ?? shared?.stall_timeout_ms ?? d.stallTimeoutMs,
    maxRetries: own.max_retries ?? shared?.max_retries ?? d.maxRetries,
    maxRetryDelayMs: own.max_retry_delay_ms ?? shared?.max_retry_delay_ms ?? d.maxRetryDelayMs,
    maxConcurrency: own.max_concurrency ?? shared?.max_concurrency ?? d.maxConcurrency,
    breaker: {
      failures: b.failures ?? d.breaker.failures,
      errorRate: { threshold: rate, windowMs: b.window_ms ?? d.breaker.windowMs, minCalls: b.min_calls ?? d.breaker.minCalls },
      cooldownMs: b.cooldown_ms ?? d.breaker.cooldownMs,
      probes: b.probes ?? d.breaker.probes,
    },
  };
}

/** The model each task type asks for first: the task registry's model, and so part of the cache key. */
export function primaryModels(routing: RoutingConfig): Record<TaskType, string> {
  return Object.fromEntries(TASK_TYPES.map((t) => [t, routing.targets[routing.routes[t].targets[0]!.name]!.model])) as Record<TaskType, string>;
}
