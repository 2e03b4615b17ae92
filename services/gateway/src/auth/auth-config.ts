import { createPublicKey, type KeyObject } from 'node:crypto';

/** `required`: every call but health and the API documents carries a token or key. `open`: the demo mode, anyone is whoever the body says. */
export const AUTH_MODES = ['required', 'open'] as const;
export type AuthMode = (typeof AUTH_MODES)[number];

/** Algorithms a JWT may be signed with (RFC 8725 3.1: pinned, never `none`). */
export const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'] as const;
export const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
export const JWT_ALGORITHMS = [...HMAC_ALGORITHMS, ...ASYMMETRIC_ALGORITHMS] as const;
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

export const isHmac = (alg: string): boolean => (HMAC_ALGORITHMS as readonly string[]).includes(alg);

export interface JwtConfig {
  /** HS* secret (JWT_SECRET). */
  secret: Uint8Array | undefined;
  /** A public key in PEM (JWT_PUBLIC_KEY). */
  publicKey: KeyObject | undefined;
  /** Keys of an identity provider, fetched and cached (JWT_JWKS_URL). */
  jwksUrl: string | undefined;
  issuer: string;
  audience: string;
  /** Accepted algorithms; a token with any other `alg` is refused before its signature is looked at. */
  algorithms: JwtAlgorithm[];
  clockToleranceS: number;
  /** The claim holding the role: `"admin"`, or an array that contains it. */
  roleClaim: string;
}

export interface AuthConfig {
  mode: AuthMode;
  /** Undefined when no JWT key source is configured (API keys only). */
  jwt: JwtConfig | undefined;
  /** The bootstrap admin key (ADMIN_API_KEY): an administrator before any key exists. */
  adminApiKey: string | undefined;
  /** How long a looked-up API key is trusted without asking the store again (revocation reaches other replicas within it). */
  apiKeyCacheMs: number;
}

/** The algorithms a public key can verify, by its type: the defaults when JWT_ALGORITHMS is not set. */
export function algorithmsForKey(key: KeyObject): JwtAlgorithm[] {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return ['RS256'];
    case 'rsa-pss':
      return ['PS256'];
    case 'ec':
      return [({ 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' } as const)[key.asymmetricKeyDetails?.namedCurve as 'P-256'] ?? 'ES256'];
    case 'ed25519':
    case 'ed448':
      return ['EdDSA'];
    default:
      return [];
  }
}

/** A PEM public key, or the reason it is not one (never echoing the value). */
export function parsePublicKey(pem: string): KeyObject | string {
  try {
    const key = createPublicKey(pem.replace(/\\n/g, '\n'));
    return key.type === 'public' ? key : 'is not a public key';
  } catch {
    return 'is not a PEM public key (SPKI, "-----BEGIN PUBLIC KEY-----")';
  }
}
