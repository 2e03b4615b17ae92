import OpenAI from 'openai';
import { AppError } from '@actionedx/shared';
import { retryAfterMs } from '../resilience/index.js';

/** Kinds of upstream failure: the `kind` label of `ai_upstream_errors_total`. */
export type UpstreamErrorKind =
  | 'rate_limited'
  | 'timeout'
  | 'first_token_timeout'
  | 'stall'
  | 'server_error'
  | 'connection'
  | 'bad_response'
  | 'client_error';

type UpstreamCode = 'upstream_rate_limited' | 'upstream_timeout' | 'upstream_error' | 'upstream_bad_response';

const CODE_OF: Record<UpstreamErrorKind, UpstreamCode> = {
  rate_limited: 'upstream_rate_limited',
  timeout: 'upstream_timeout',
  first_token_timeout: 'upstream_timeout',
  stall: 'upstream_timeout',
  server_error: 'upstream_error',
  connection: 'upstream_error',
  bad_response: 'upstream_bad_response',
  client_error: 'upstream_error',
};

/** One failed call of one model target. */
export class UpstreamError extends AppError {
  constructor(
    readonly kind: UpstreamErrorKind,
    message: string,
    opts: { cause?: unknown; retryAfterMs?: number | undefined; status?: number | undefined } = {},
  ) {
    // The provider's retry-after, when it named one: also what a client is told to wait (AppError.retryAfterMs).
    super(CODE_OF[kind], message, { cause: opts.cause, ...(opts.retryAfterMs === undefined ? {} : { retryAfterMs: opts.retryAfterMs }) });
    this.httpStatus = opts.status;
  }

  /** The provider's HTTP status, when it answered with one. */
  readonly httpStatus: number | undefined;

  /** Worth another try on the same target (after a pause): the provider may well answer next time. */
  get worthRetrying(): boolean {
    return this.kind === 'rate_limited' || this.kind === 'server_error' || this.kind === 'connection';
  }

  /**
   * Says something about the target's health, for its breaker. A request the provider refused as malformed
   * (400, 413, 422) would fail anywhere; a bad key or an unknown model (401, 403, 404) is the target's fault.
   */
  get countsAgainstTarget(): boolean {
    if (this.kind !== 'client_error') return true;
    return this.httpStatus === 401 || this.httpStatus === 403 || this.httpStatus === 404;
  }
}

/**
 * The SDK's errors, and those of reading the stream, as the platform's; an abort is re-thrown as the reason
 * the aborting signal carries (a timeout of ours, a lost hedge, the client gone).
 */
export function toUpstreamError(err: unknown, signal: AbortSignal): Error {
  if (signal.aborted) return signal.reason instanceof Error ? signal.reason : new AppError('cancelled');
  if (err instanceof UpstreamError || err instanceof AppError) return err;
  if (err instanceof OpenAI.APIConnectionTimeoutError) return new UpstreamError('timeout', 'the model provider timed out', { cause: err });
  if (err instanceof OpenAI.APIConnectionError) return new UpstreamError('connection', 'the connection to the model provider failed', { cause: err });
  if (err instanceof OpenAI.RateLimitError) {
    return new UpstreamError('rate_limited', 'the model provider is rate limiting', { cause: err, retryAfterMs: retryAfterMs(err.headers), status: 429 });
  }
  if (err instanceof OpenAI.APIError) {
    const status = err.status as number | undefined;
    const kind = status !== undefined && status >= 500 ? 'server_error' : status === 408 || status === 409 ? 'server_error' : 'client_error';
    const what = kind === 'server_error' ? 'failed' : 'refused the request';
    return new UpstreamError(kind, `the model provider ${what} (${status ?? 'no status'})`, { cause: err, status, retryAfterMs: retryAfterMs(err.headers as Parameters<typeof retryAfterMs>[0]) });
  }
  // A stream cut mid-answer surfaces as a plain error from the body reader.
  return new UpstreamError('connection', 'the model stream broke off', { cause: err });
}
