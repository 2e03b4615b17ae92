import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { AppError, type ErrorCode, type Logger, type Redis, type Usage } from '@actionedx/shared';
import type { GatewayMetrics } from '../metrics.js';
import type { CallerLimits } from './limits.js';
import { rateLimitHeaders, type PolicyState } from './ratelimit-headers.js';
import { RequestLeases, type CounterReading } from './request-leases.js';

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
/** The spend counter's key carries the UTC day; the counter outlives it by an hour, then expires. */
const SPEND_WINDOW_S = DAY_S + 3_600;
/** The limiter library compares against `points`; we compare against each caller's own limits instead. */
const UNBOUNDED = Number.MAX_SAFE_INTEGER;
const MICROS = 1_000_000;

export type AdmissionStore = { kind: 'redis'; redis: Redis } | { kind: 'memory' };

/**
 * An answer's charge in one round trip: its tokens and its micro-dollars added to their counters as the library's
 * `penalty` adds them (`SET NX EX`, `INCRBY`, the expiry restored if it was lost); a zero is not written.
 */
const ADMISSION_CHARGE = {
  numberOfKeys: 2,
  lua: `
for i = 1, 2 do
  local points = tonumber(ARGV[2 * i - 1])
  if points > 0 then
    redis.call('SET', KEYS[i], 0, 'EX', ARGV[2 * i], 'NX')
    redis.call('INCRBY', KEYS[i], points)
    if redis.call('PTTL', KEYS[i]) == -1 then redis.call('EXPIRE', KEYS[i], ARGV[2 * i]) end
  end
end
return 1
`,
} as const;

type RedisWithAdmission = Redis & {
  admissionCharge(tokensKey: string, spendKey: string, tokens: number, tokensWindowS: number, micros: number, spendWindowS: number): Promise<number>;
};

const withAdmissionScripts = (redis: Redis): RedisWithAdmission => {
  if (!('admissionCharge' in redis)) redis.defineCommand('admissionCharge', ADMISSION_CHARGE);
  return redis as RedisWithAdmission;
};

const secondsToUtcMidnight = (now: number): number => DAY_S - Math.floor(now / 1000) % DAY_S;
const utcDay = (now: number): string => new Date(now).toISOString().slice(0, 10);

/**
 * Rate limits and budgets per user and per API key, shared by every gateway replica: counters in Redis
 * (rate-limiter-flexible's keys and counting: `SET NX EX` + `INCRBY` + `PTTL` in atomic Lua scripts), in memory
 * without LIMITER_REDIS_URL or REDIS_URL. In Redis, requests are leased in blocks (`RequestLeases`: one round trip
 * per block of a busy caller's calls, one per call for a quiet caller; what that keeps exact is said there), and
 * charging an answer is one round trip (`ADMISSION_CHARGE`: two of the library's scripts otherwise).
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
  /** This call's point taken, the tokens and spend read: from a lease in Redis, the library's calls in memory. */
  private readonly take: (subject: AdmissionSubject, dayKey: string) => Promise<CounterReading>;
  /** Requests leased in blocks from Redis (none in memory: there is nothing to save). */
  private readonly leases: RequestLeases | undefined;
  /** An answer's tokens and micro-dollars added: one script in Redis, the library's `penalty` in memory. */
  private readonly add: (key: string, dayKey: string, tokens: number, micros: number) => Promise<void>;

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
    this.spend = make('rl:usd', SPEND_WINDOW_S);
    if (store.kind === 'redis') {
      const redis = withAdmissionScripts(store.redis);
      const leases = new RequestLeases(
        redis,
        { requests: (key) => this.requests.getKey(key), tokens: (key) => this.tokens.getKey(key), spend: (dayKey) => this.spend.getKey(dayKey) },
        {
          now: () => this.now(),
          windowS: MINUTE_S,
          onTrip: (event, leases) => deps.metrics.admission.leases.inc({ event }, leases),
          onGiveBackError: (err) => {
            deps.metrics.admission.limiterErrors.inc({ operation: 'give_back' });
            deps.logger.warn({ err }, 'could not give back the unused requests of a lease');
          },
        },
      );
      this.leases = leases;
      this.take = (subject, dayKey) => leases.take(subject.key, dayKey, subject.limits.requests_per_minute);
      this.add = (key, dayKey, tokens, micros) => {
        leases.noteCharge(key, dayKey, tokens, micros);
        return redis.admissionCharge(this.tokens.getKey(key), this.spend.getKey(dayKey), tokens, MINUTE_S, micros, SPEND_WINDOW_S).then(() => undefined);
      };
    } else {
      this.leases = undefined;
      this.take = this.takeInMemory();
      this.add = async (key, dayKey, tokens, micros) => {
        await Promise.all([tokens > 0 ? this.tokens.penalty(key, tokens) : undefined, micros > 0 ? this.spend.penalty(dayKey, micros) : undefined]);
      };
    }
  }

  private takeInMemory(): (subject: AdmissionSubject, dayKey: string) => Promise<CounterReading> {
    return async ({ key }, dayKey) => {
      const [requests, tokens, spend] = await Promise.all([
        this.requests.consume(key, 1),
        this.tokens.get(key),
        this.spend.get(dayKey),
      ]);
      return { requests, tokens, spend };
    };
  }

  /** Give back the unused requests this replica leased (shutdown: they are its callers' for the rest of the minute). */
  async close(): Promise<void> {
    await this.leases?.close();
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
    let reading: CounterReading;
    try {
      reading = await this.take(subject, dayKey);
    } catch (err) {
      metrics.admission.limiterErrors.inc({ operation: 'admit' });
      this.deps.logger.warn({ err: err instanceof RateLimiterRes ? undefined : err }, 'rate limiter unavailable: refusing the call');
      throw new AppError('limiter_unavailable', undefined, { cause: err });
    } finally {
      metrics.admission.latency.observe((performance.now() - started) / 1000);
    }
    const { limits } = subject;
    const { requests: req, tokens: tok, spend: usd } = reading;
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
    if (tokens === 0 && micros === 0) return;
    // Charged in the next turn: the answer, written in this one, goes out first.
    setImmediate(() => this.add(key, dayKey, tokens, micros).catch(fail));
  }
}
