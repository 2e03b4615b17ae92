import { z } from 'zod';
import { FAULTS, type Fault } from './faults.js';

/** What every completion does unless a request overrides it; changeable at runtime. */
export interface MockBehaviour {
  /** Delay before the first token. Default 0. */
  ttftMs: number;
  /** Pace of the tokens after the first; 0 sends them all at once. Default 0. */
  tokensPerSecond: number;
  /** Words of prose in an answer (a requested suggestions block comes on top). Default 48. */
  completionTokens: number;
  /** Fault served to a share of the requests. Default none. */
  fault: Fault;
  /** Share (0..1) of the requests that get `fault`. Default 1. */
  faultRate: number;
  /** Requests left that get `fault` (then it is switched off); 0 means no limit. Default 0. */
  faultCount: number;
  /** Seconds in the `retry-after` header of a `rate_limit` fault. Default 1. */
  retryAfterS: number;
}

/** `base` with the fields `patch` defines; only behaviour fields are kept, so a whole config may be passed. */
export function mergeBehaviour(base: MockBehaviour, patch: Partial<MockBehaviour>): MockBehaviour {
  return {
    ttftMs: patch.ttftMs ?? base.ttftMs,
    tokensPerSecond: patch.tokensPerSecond ?? base.tokensPerSecond,
    completionTokens: patch.completionTokens ?? base.completionTokens,
    fault: patch.fault ?? base.fault,
    faultRate: patch.faultRate ?? base.faultRate,
    faultCount: patch.faultCount ?? base.faultCount,
    retryAfterS: patch.retryAfterS ?? base.retryAfterS,
  };
}

/** Body of `PUT /mock/config`; unknown fields are refused so a typo in a test fails loudly. */
export const BehaviourPatchSchema = z
  .strictObject({
    ttft_ms: z.number().int().nonnegative().optional(),
    tokens_per_second: z.number().nonnegative().optional(),
    completion_tokens: z.number().int().nonnegative().optional(),
    fault: z.enum(FAULTS).optional(),
    fault_rate: z.number().min(0).max(1).optional(),
    fault_count: z.number().int().nonnegative().optional(),
    retry_after_s: z.number().nonnegative().optional(),
  })
  .transform(
    (p): Partial<MockBehaviour> => ({
      ttftMs: p.ttft_ms,
      tokensPerSecond: p.tokens_per_second,
      completionTokens: p.completion_tokens,
      fault: p.fault,
      faultRate: p.fault_rate,
      faultCount: p.fault_count,
      retryAfterS: p.retry_after_s,
    }),
  );

/** The body of `GET /mock/config`: the same names `PUT` takes. */
export const behaviourToWire = (b: MockBehaviour) => ({
  ttft_ms: b.ttftMs,
  tokens_per_second: b.tokensPerSecond,
  completion_tokens: b.completionTokens,
  fault: b.fault,
  fault_rate: b.faultRate,
  fault_count: b.faultCount,
  retry_after_s: b.retryAfterS,
});

/** Per-request timing overrides, as headers so an SDK client can send them without touching the body. */
const HeaderOverridesSchema = z
  .object({
    'x-mock-ttft-ms': z.coerce.number().int().nonnegative().optional(),
    'x-mock-tokens-per-second': z.coerce.number().nonnegative().optional(),
    'x-mock-completion-tokens': z.coerce.number().int().nonnegative().optional(),
  })
  .transform(
    (h): Partial<MockBehaviour> => ({
      ttftMs: h['x-mock-ttft-ms'],
      tokensPerSecond: h['x-mock-tokens-per-second'],
      completionTokens: h['x-mock-completion-tokens'],
    }),
  );

export const parseHeaderOverrides = (headers: Record<string, unknown>) => HeaderOverridesSchema.safeParse(headers);
