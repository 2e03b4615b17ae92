/**
 * The IETF RateLimit header fields, draft-ietf-httpapi-ratelimit-headers-10 (September 2025): structured
 * fields (RFC 9651), one List item per policy.
 *
 *   RateLimit-Policy: "requests";q=60;w=60, "tokens";q=100000;qu="tokens";w=60, "daily_spend";q=5000000;qu="usd_micros";w=86400
 *   RateLimit: "requests";r=59;t=60, "tokens";r=99790;t=41, "daily_spend";r=4999700;t=52000
 *
 * `q` quota, `w` window (s), `r` remaining, `t` seconds until the quota resets. The token and spend policies
 * count in units of their own (`qu`), which clients that only know `requests` may ignore.
 */
export interface PolicyState {
  /** A structured-field string: letters, digits, `_` and `-` only here. */
  name: string;
  quota: number;
  windowS: number;
  /** Omitted for requests (the draft's default unit). */
  unit?: string | undefined;
  remaining: number;
  resetS: number;
}

const sfInt = (n: number): number => Math.max(0, Math.min(999_999_999_999_999, Math.floor(n)));

export function rateLimitPolicyHeader(policies: readonly PolicyState[]): string {
  return policies
    .map((p) => `"${p.name}";q=${sfInt(p.quota)}${p.unit === undefined ? '' : `;qu="${p.unit}"`};w=${sfInt(p.windowS)}`)
    .join(', ');
}

export function rateLimitHeader(policies: readonly PolicyState[]): string {
  return policies.map((p) => `"${p.name}";r=${sfInt(p.remaining)};t=${sfInt(Math.ceil(p.resetS))}`).join(', ');
}

/** Both fields, ready to set on a response. */
export function rateLimitHeaders(policies: readonly PolicyState[]): Record<string, string> {
  return { 'RateLimit-Policy': rateLimitPolicyHeader(policies), RateLimit: rateLimitHeader(policies) };
}
