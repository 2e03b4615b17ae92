import { AppError, UserIdSchema, type Logger } from '@actionedx/shared';
import { callerLimits, type CallerLimits, type Role } from '../admission/limits.js';
import type { GatewayMetrics } from '../metrics.js';
import type { AuthConfig } from './auth-config.js';
import { looksLikeApiKey, sha256Hex, secretMatches } from './api-key.js';
import type { ApiKeys } from './api-keys.js';
import { AuthFailure, JwtVerifier, type AuthFailureReason } from './jwt-verifier.js';
import type { Principal } from './principal.js';

export type Transport = 'http' | 'ws';

/** The user id of the bootstrap admin key (ADMIN_API_KEY). */
export const BOOTSTRAP_ADMIN_USER = 'admin';

const UNAUTHORIZED_MESSAGES: Partial<Record<AuthFailureReason, string>> = {
  missing: 'Authentication required: send Authorization: Bearer <token or API key>.',
  expired: 'The token has expired.',
};

/**
 * Turns a presented credential into the caller's `Principal`: a JWT (verified by `JwtVerifier`), an API
 * key (`axk_...`, looked up in `ApiKeys`) or the bootstrap admin key. Every refusal is `unauthorized`
 * (401) with a generic message, counted by reason; a store or JWKS that cannot answer is
 * `auth_unavailable` (503). In open mode nobody is asked for anything.
 */
export class Authenticator {
  private readonly jwt: JwtVerifier | undefined;
  private readonly adminKeySha256: string | undefined;

  constructor(
    readonly config: AuthConfig,
    private readonly deps: {
      keys: ApiKeys;
      roles: Readonly<Record<Role, CallerLimits>>;
      metrics: Pick<GatewayMetrics, 'auth'>;
      logger: Logger;
    },
  ) {
    this.jwt = config.jwt === undefined ? undefined : new JwtVerifier(config.jwt);
    this.adminKeySha256 = config.adminApiKey === undefined ? undefined : sha256Hex(config.adminApiKey);
  }

  get mode(): AuthConfig['mode'] {
    return this.config.mode;
  }

  /** The caller in open mode: whoever the request names (or no one yet), with a user's limits. */
  openPrincipal(userId?: string): Principal {
    return { user_id: userId, role: 'user', method: 'open', limits: this.deps.roles.user };
  }

  /** Verify `credential` (required mode); throws AppError `unauthorized` or `auth_unavailable`. */
  async authenticate(credential: string | undefined, transport: Transport): Promise<Principal> {
    try {
      const principal = await this.verify(credential);
      this.deps.metrics.auth.successes.inc({ method: principal.method });
      return principal;
    } catch (err) {
      if (!(err instanceof AuthFailure)) throw err;
      this.deps.metrics.auth.failures.inc({ reason: err.reason, transport });
      if (err.reason === 'unavailable') {
        this.deps.logger.warn({ err: err.cause }, 'credentials could not be checked');
        throw new AppError('auth_unavailable', undefined, { cause: err });
      }
      this.deps.logger.debug({ reason: err.reason, transport }, 'credential refused');
      throw new AppError('unauthorized', UNAUTHORIZED_MESSAGES[err.reason] ?? 'The token or key is not valid.');
    }
  }

  private async verify(credential: string | undefined): Promise<Principal> {
    if (credential === undefined || credential === '') throw new AuthFailure('missing');
    if (this.adminKeySha256 !== undefined && secretMatches(credential, this.adminKeySha256)) {
      return { user_id: BOOTSTRAP_ADMIN_USER, role: 'admin', method: 'admin_key', key_id: 'bootstrap', limits: this.deps.roles.admin };
    }
    if (looksLikeApiKey(credential)) {
      const record = await this.deps.keys.resolve(credential);
      return {
        user_id: record.user_id,
        role: record.role,
        method: 'api_key',
        key_id: record.id,
        limits: callerLimits(this.deps.roles, record.role, record.limits),
      };
    }
    if (this.jwt === undefined) throw new AuthFailure('malformed');
    const claims = await this.jwt.verify(credential);
    if (!UserIdSchema.safeParse(claims.sub).success) throw new AuthFailure('bad_subject');
    const role: Role = hasAdminRole(claims[this.config.jwt!.roleClaim]) ? 'admin' : 'user';
    return { user_id: claims.sub, role, method: 'jwt', limits: this.deps.roles[role], expires_at: claims.exp * 1000 };
  }
}

const hasAdminRole = (claim: unknown): boolean =>
  claim === 'admin' || (Array.isArray(claim) && claim.includes('admin'));
