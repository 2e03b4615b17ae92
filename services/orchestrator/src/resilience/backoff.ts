export interface BackoffOptions {
  /** Delay before the first retry, before jitter. Default 250 ms. */
  baseMs?: number;
  /** Upper bound of any delay. Default 4000 ms. */
  maxMs?: number;
}

/**
 * Delay before retry number `retry` (0 for the first): exponential, with "equal jitter" (between half and all
 * of the exponential delay), so that replicas failing together do not come back together.
 */
export function backoffDelay(retry: number, opts: BackoffOptions = {}, random: () => number = Math.random): number {
  const base = opts.baseMs ?? 250;
  const max = opts.maxMs ?? 4000;
  const exp = Math.min(max, base * 2 ** retry);
  return Math.round(exp / 2 + random() * (exp / 2));
}

/** What a `Headers`-like object the SDK's errors carry needs to have. */
interface HeaderSource {
  get(name: string): string | null;
}

/**
 * How long the server asked us to wait, from `retry-after-ms` (OpenAI's, milliseconds), or `retry-after`
 * (seconds, or an HTTP date); undefined when it said nothing usable.
 */
export function retryAfterMs(headers: HeaderSource | undefined, now: number = Date.now()): number | undefined {
  if (!headers) return undefined;
  const ms = Number.parseFloat(headers.get('retry-after-ms') ?? '');
  if (Number.isFinite(ms) && ms >= 0) return Math.ceil(ms);
  const raw = headers.get('retry-after');
  if (raw === null || raw.trim() === '') return undefined;
  const seconds = Number(raw);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds * 1000);
  const at = Date.parse(raw);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
