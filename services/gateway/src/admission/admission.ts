import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { AppError, type ErrorCode, type Logger, type Redis, type Usage } from '@actionedx/shared';
import type { GatewayMetrics } from '../metrics.js';
import type { CallerLimits } from './limits.js';
import { rateLimitHeaders, type PolicyState } from './ratelimit-headers.js';

/** Whom a call is counted against: one user, or one API key (with the key's own limits). */
export interface AdmissionSubject {
  /** `user:<id>` or `key:<id>`. */
  key: string;
  limits: CallerLimits;
}

/** What the answer cost, charged once it is known (`done`): tokens per minute and the day's spend. */
export interface AnswerCost {
  cached: boolean;
  usage: Pick<Usage, 'total_tokens'>;
  cost_usd: number;
}

/** An admitted call: its RateLimit headers, and where to charge what its answer cost. */
export interface AdmissionTicket {
  readonly headers: Record<string, string>;
  charge(cost: AnswerCost): void;
}

/** A refused call: the code the client sees, its headers (`Retry-After` among them) and the wait in seconds. */
export class AdmissionRefusal extends AppError {
  constructor(
    code: ErrorCode,
    readonly headers: Record<string, string>,
    readonly retryAfterS: number,
    readonly kind: 'requests' | 'tokens' | 'budget',
  ) {
    super(code, undefined, { details: { limit: kind, retry_after_s: retryAfterS } });
  }
}

const MINUTE_S = 60;
const DAY_S = 86_400;
/** The limiter library compares against `points`; we compare against each caller's own limits instead. */
const UNBOUNDED = Number.MAX_SAFE_INTEGER;
const MICROS = 1_000_000;

export type AdmissionStore = { kind: 'redis'; redis: Redis } | { kind: 'memory' };

const secondsToUtcMidnight = (now: number): number => DAY_S - Math.floor(now / 1000) % DAY_S;
const utcDay = (now: number): string => new Date(now).toISOString().slice(0, 10);

/**
 * Rate limits and budgets per user and per API key, shared by every gateway replica: counters in Redis
 * (rate-limiter-flexible's RateLimiterRedis: one Lua script per change, `SET NX EX` + `INCRBY` + `PTTL`,
 * atomic), in memory without LIMITER_REDIS_URL or REDIS_URL.
 *
 * - requests per minute: one point per chat call, taken on admission (fixed one-minute window);
 * - model tokens per minute: checked on admission, charged after the answer from its real usage;
 * - spend per UTC day in micro-dollars: checked on admission, charged after the answer from `cost_usd`.
 *
 * A store that fails refuses the call with `limiter_unavailable` (fail closed, counted), never lets it
 * through unlimited. The token and spend checks are not atomic with their charges (the cost is only known
 * at the end): concurrent calls of one caller can overshoot by what they cost together.
 */
export class Admission {
  private readonly requests: RateLimiterAbstract;
  private readonly tokens: RateLimiterAbstract;
  private readonly spend: RateLimiterAbstract;

  constructor(
    store: AdmissionStore,
    private readonly deps: {
      metrics: Pick<GatewayMetrics, 'admission'>;
      logger: Logger;
      now?: () => number;
    },
  ) {
    const make = (keyPrefix: string, duration: number): RateLimiterAbstract =>
      store.kind === 'redis'
        ? new RateLimiterRedis({ storeClient: store.redis, keyPrefix, points: UNBOUNDED, duration })
        : new RateLimiterMemory({ keyPrefix, points: UNBOUNDED, duration });
    this.requests = make('rl:req', MINUTE_S);
    this.tokens = make('rl:tok', MINUTE_S);
    // The key carries the UTC day; the counter outlives it by an hour, then expires.
    this.spend = make('rl:usd', DAY_S + 3_600);
  }

  private now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  /** Admit one chat call or refuse it (`AdmissionRefusal` 429, `limiter_unavailable` 503). */
  async admit(subject: AdmissionSubject): Promise<AdmissionTicket> {
    const { metrics } = this.deps;
    const started = performance.now();
    const now = this.now();
    const dayKey = `${subject.key}:${utcDay(now)}`;
    let req: RateLimiterRes;
    let tok: RateLimiterRes | null;
    let usd: RateLimiterRes | null;
    try {
      [req, tok, usd] = await Promise.all([
        this.requests.consume(subject.key, 1),
        this.tokens.get(subject.key),
        this.spend.get(dayKey),
      ]);
    } catch (err) {
      metrics.admission.limiterErrors.inc({ operation: 'admit' });
      this.deps.logger.warn({ err: err instanceof RateLimiterRes ? undefined : err }, 'rate limiter unavailable: refusing the call');
      throw new AppError('limiter_unavailable', undefined, { cause: err });
    } finally {
      metrics.admission.latency.observe((performance.now() - started) / 1000);
    }
    const { limits } = subject;
    const budgetMicros = Math.round(limits.daily_budget_usd * MICROS);
    const policies: PolicyState[] = [
      {
        name: 'requests',
        quota: limits.requests_per_minute,
        windowS: MINUTE_S,
        remaining: limits.requests_per_minute - req.consumedPoints,
        resetS: req.msBeforeNext / 1000,
      },
      {
        name: 'tokens',
        quota: limits.tokens_per_minute,
        windowS: MINUTE_S,
        unit: 'tokens',
        remaining: limits.tokens_per_minute - (tok?.consumedPoints ?? 0),
        resetS: tok === null ? MINUTE_S : tok.msBeforeNext / 1000,
      },
      {
        name: 'daily_spend',
        quota: budgetMicros,
        windowS: DAY_S,
        unit: 'usd_micros',
        remaining: budgetMicros - (usd?.consumedPoints ?? 0),
        resetS: secondsToUtcMidnight(now),
      },
    ];
    const headers = rateLimitHeaders(policies);
    const refuse = (code: ErrorCode, kind: AdmissionRefusal['kind'], resetS: number): never => {
      metrics.admission.rejections.inc({ kind });
      const retryAfterS = Math.max(1, Math.ceil(resetS));
      throw new AdmissionRefusal(code, { ...headers, 'Retry-After': String(retryAfterS) }, retryAfterS, kind);
    };
    if (req.consumedPoints > limits.requests_per_minute) refuse('rate_limited', 'requests', policies[0]!.resetS);
    if ((tok?.consumedPoints ?? 0) >= limits.tokens_per_minute) refuse('token_rate_limited', 'tokens', policies[1]!.resetS);
    if ((usd?.consumedPoints ?? 0) >= budgetMicros) refuse('budget_exceeded', 'budget', policies[2]!.resetS);
    return { headers, charge: (cost) => this.charge(subject.key, dayKey, cost) };
  }

  /** After the answer: its tokens and its cost (a cached answer costs neither). Failures are counted, not thrown. */
  private charge(key: string, dayKey: string, cost: AnswerCost): void {
    if (cost.cached) return;
    const tokens = Math.max(0, Math.floor(cost.usage.total_tokens));
    const micros = Math.max(0, Math.ceil(cost.cost_usd * MICROS));
    const fail = (err: unknown): void => {
      this.deps.metrics.admission.limiterErrors.inc({ operation: 'charge' });
      this.deps.logger.warn({ err }, 'could not charge an answer to its caller');
    };
    if (tokens > 0) this.tokens.penalty(key, tokens).catch(fail);
    if (micros > 0) this.spend.penalty(dayKey, micros).catch(fail);
  }
}
