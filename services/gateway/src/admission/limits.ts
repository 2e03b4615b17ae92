import { z } from 'zod';

/** Who a caller is to the limits: every user, or an administrator. */
export const ROLES = ['user', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/**
 * What one caller may consume: the limits of the admission layer, as data. Each role has a set
 * (`DEFAULT_ROLE_LIMITS`, overridden per role by `RATE_LIMITS`), an API key may carry overrides of its own.
 */
export interface CallerLimits {
  /** Chat requests (REST, SSE and WebSocket turns) per minute. */
  requests_per_minute: number;
  /** Model tokens per minute, charged after each answer from its real usage (cached answers cost 0). */
  tokens_per_minute: number;
  /** Spend per UTC day in US dollars, charged after each answer from its `cost_usd`. */
  daily_budget_usd: number;
  /** Open WebSockets at once, across every gateway replica. */
  ws_connections: number;
  /** Messages a client may send on one WebSocket per second (token bucket refill)... */
  ws_messages_per_second: number;
  /** ... and in one burst (bucket size). */
  ws_message_burst: number;
}

export const DEFAULT_ROLE_LIMITS: Readonly<Record<Role, Readonly<CallerLimits>>> = {
  user: {
    requests_per_minute: 60,
    tokens_per_minute: 100_000,
    daily_budget_usd: 5,
    ws_connections: 10,
    ws_messages_per_second: 5,
    ws_message_burst: 20,
  },
  admin: {
    requests_per_minute: 600,
    tokens_per_minute: 1_000_000,
    daily_budget_usd: 100,
    ws_connections: 50,
    ws_messages_per_second: 20,
    ws_message_burst: 50,
  },
};

const count = (max: number) => z.number().int().min(1).max(max);

/** A partial set of limits: what an API key or a role's configuration overrides. */
export const CallerLimitsOverridesSchema = z
  .object({
    requests_per_minute: count(1_000_000),
    tokens_per_minute: count(1_000_000_000),
    daily_budget_usd: z.number().positive().max(1_000_000),
    ws_connections: count(1_000_000),
    ws_messages_per_second: count(1_000_000),
    ws_message_burst: count(1_000_000),
  })
  .partial()
  .strict();
export type CallerLimitsOverrides = z.infer<typeof CallerLimitsOverridesSchema>;

/** `RATE_LIMITS`: `{"user": {...}, "admin": {...}}`, each a partial set merged over the defaults. */
export const RoleLimitsOverridesSchema = z
  .object({ user: CallerLimitsOverridesSchema, admin: CallerLimitsOverridesSchema })
  .partial()
  .strict();
export type RoleLimitsOverrides = z.infer<typeof RoleLimitsOverridesSchema>;

export function roleLimits(overrides: RoleLimitsOverrides = {}): Record<Role, CallerLimits> {
  return {
    user: { ...DEFAULT_ROLE_LIMITS.user, ...overrides.user },
    admin: { ...DEFAULT_ROLE_LIMITS.admin, ...overrides.admin },
  };
}

/** The limits of one caller: its role's, with its key's overrides on top. */
export const callerLimits = (
  roles: Readonly<Record<Role, CallerLimits>>,
  role: Role,
  overrides?: CallerLimitsOverrides,
): CallerLimits => (overrides === undefined ? roles[role] : { ...roles[role], ...overrides });

/**
 * The limits enforced at the edge, before anything reaches a worker: one object, documented once (README,
 * "Limits"), read from the environment at start.
 */
export interface EdgeLimits {
  /** Largest HTTP body or WebSocket message. */
  bodyBytes: number;
  /** Nesting levels of a body or WebSocket message (the body object is level 1). */
  jsonMaxDepth: number;
  /** Bytes queued for one WebSocket client that does not read, before the gateway stops relaying and closes it. */
  wsSendBufferBytes: number;
  /** A gateway's claim on a user's WebSocket slot lives this long unless renewed (a dead replica's slots vanish). */
  wsConnectionLeaseMs: number;
  /** Time to receive a request's headers (slowloris). */
  httpHeadersTimeoutMs: number;
  /** Time to receive a whole request, body included (slow bodies). */
  httpRequestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  httpKeepAliveTimeoutMs: number;
}
