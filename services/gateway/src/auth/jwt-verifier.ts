import { webcrypto } from 'node:crypto';
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';

type CryptoKey = webcrypto.CryptoKey;
import { isHmac, type JwtConfig } from './auth-config.js';

/** Why a credential was refused: the `reason` label of `gateway_auth_failures_total` (a small, fixed set). */
export type AuthFailureReason =
  | 'missing'
  | 'malformed'
  | 'alg_not_allowed'
  | 'bad_signature'
  | 'unknown_key'
  | 'expired'
  | 'not_yet_valid'
  | 'wrong_claims'
  | 'bad_subject'
  | 'bad_key'
  | 'revoked';

/** A refused credential; `unavailable`: it could not be checked (the JWKS or key store did not answer). */
export class AuthFailure extends Error {
  constructor(
    readonly reason: AuthFailureReason | 'unavailable',
    options?: { cause?: unknown },
  ) {
    super(`credential refused: ${reason}`, options);
    this.name = 'AuthFailure';
  }
}

const REQUIRED_CLAIMS = ['exp', 'iss', 'aud', 'sub'];
/** A JWKS is fetched at most this often when a token names a `kid` it does not have (a rotation). */
const JWKS_COOLDOWN_MS = 30_000;
const JWKS_TIMEOUT_MS = 2_000;

function reasonOf(err: unknown): AuthFailureReason | 'unavailable' {
  if (err instanceof errors.JWTExpired) return 'expired';
  if (err instanceof errors.JWTClaimValidationFailed) return err.claim === 'nbf' ? 'not_yet_valid' : 'wrong_claims';
  if (err instanceof errors.JOSEAlgNotAllowed) return 'alg_not_allowed';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'bad_signature';
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) return 'unknown_key';
  if (err instanceof errors.JWKSTimeout) return 'unavailable';
  if (err instanceof errors.JOSEError) return 'malformed';
  if (err instanceof TypeError && /fetch|network|ECONNREFUSED/i.test(`${err.message} ${String(err.cause)}`)) return 'unavailable';
  // jose refuses a key of the wrong type for the algorithm with a TypeError: never a valid token.
  return 'malformed';
}

/**
 * Verifies JWTs as RFC 8725 asks: the algorithms are pinned (checked before any key is touched; `none`
 * never), HMAC algorithms only ever use the secret and the others only the public key or JWKS (no HS/RS
 * confusion), `iss`, `aud`, `exp` and `sub` are required, `nbf` and `exp` get a small clock tolerance.
 */
export class JwtVerifier {
  private readonly key: JWTVerifyGetKey;

  /** The secret as a WebCrypto key per HMAC algorithm, imported once (as raw bytes it is imported on every call). */
  private readonly hmacKeys = new Map<string, Promise<CryptoKey>>();

  constructor(private readonly cfg: JwtConfig) {
    const jwks = cfg.jwksUrl === undefined
      ? undefined
      : createRemoteJWKSet(new URL(cfg.jwksUrl), { cooldownDuration: JWKS_COOLDOWN_MS, timeoutDuration: JWKS_TIMEOUT_MS });
    this.key = async (header, token) => {
      if (isHmac(header.alg)) {
        if (cfg.secret === undefined) throw new errors.JOSEAlgNotAllowed('no secret for an HMAC algorithm');
        return this.hmacKey(header.alg, cfg.secret);
      }
      if (cfg.publicKey !== undefined) return cfg.publicKey;
      if (jwks !== undefined) return jwks(header, token);
      throw new errors.JOSEAlgNotAllowed('no public key for an asymmetric algorithm');
    };
  }

  private hmacKey(alg: string, secret: Uint8Array): Promise<CryptoKey> {
    let key = this.hmacKeys.get(alg);
    if (key === undefined) {
      key = webcrypto.subtle.importKey('raw', secret, { name: 'HMAC', hash: `SHA-${alg.slice(2)}` }, false, ['verify']);
      this.hmacKeys.set(alg, key);
    }
    return key;
  }

  /** The verified claims; throws `AuthFailure`. */
  async verify(token: string): Promise<JWTPayload & { sub: string; exp: number }> {
    try {
      const { payload } = await jwtVerify(token, this.key, {
        algorithms: this.cfg.algorithms,
        issuer: this.cfg.issuer,
        audience: this.cfg.audience,
        clockTolerance: this.cfg.clockToleranceS,
        requiredClaims: REQUIRED_CLAIMS,
      });
      return payload as JWTPayload & { sub: string; exp: number };
    } catch (err) {
      throw new AuthFailure(reasonOf(err), { cause: err });
    }
  }
}
