import { SignJWT } from 'jose';

/**
 * Credentials for tests: the JWT settings and bootstrap admin key a test gateway (or a stack's gateway
 * processes) is started with, and helpers that mint tokens and create API keys the way a client would.
 */
export const TEST_AUTH = {
  /** HS256 secret (JWT_SECRET). */
  secret: 'testkit-jwt-secret-0123456789abcdef-0123456789',
  issuer: 'https://auth.actionedx.test',
  audience: 'actionedx-test',
  /** The bootstrap admin key (ADMIN_API_KEY). */
  adminKey: 'testkit-admin-key-0123456789abcdef-0123456789',
} as const;

/** The environment of a gateway process with authentication required, on the test credentials. */
export function testAuthEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    AUTH_MODE: 'required',
    JWT_SECRET: TEST_AUTH.secret,
    JWT_ISSUER: TEST_AUTH.issuer,
    JWT_AUDIENCE: TEST_AUTH.audience,
    ADMIN_API_KEY: TEST_AUTH.adminKey,
    ...extra,
  };
}

export interface MintOptions {
  role?: 'user' | 'admin';
  /** Seconds until `exp` (negative: already expired). Default 600. */
  ttlS?: number;
  /** Claims to add or override (`iss`, `aud`, `nbf`, ...). */
  claims?: Record<string, unknown>;
  /** Another signing secret (a forged token). */
  secret?: string;
}

/** A JWT for `user`, signed with the test secret (HS256), valid for the test issuer and audience. */
export async function mintToken(user: string, opts: MintOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ role: opts.role ?? 'user', ...opts.claims })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(user)
    .setIssuer(TEST_AUTH.issuer)
    .setAudience(TEST_AUTH.audience)
    .setIssuedAt(now)
    .setExpirationTime(now + (opts.ttlS ?? 600))
    .sign(new TextEncoder().encode(opts.secret ?? TEST_AUTH.secret));
}

export const bearer = (credential: string): Record<string, string> => ({ authorization: `Bearer ${credential}` });

/** Headers of a call as `user` (a fresh token each time). */
export const authHeaders = async (user: string, opts: MintOptions = {}): Promise<Record<string, string>> =>
  bearer(await mintToken(user, opts));

/** Headers of the bootstrap administrator. */
export const adminHeaders = (): Record<string, string> => bearer(TEST_AUTH.adminKey);

/** An API key created through `POST /api/admin/keys`, as an administrator would. */
export async function createApiKey(
  baseUrl: string,
  spec: { user_id: string; role?: 'user' | 'admin'; name?: string; limits?: Record<string, number> },
  admin: Record<string, string> = adminHeaders(),
): Promise<{ id: string; key: string; user_id: string; role: string }> {
  const res = await fetch(`${baseUrl}/api/admin/keys`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...admin },
    body: JSON.stringify(spec),
  });
  if (res.status !== 201) throw new Error(`creating an API key: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as { id: string; key: string; user_id: string; role: string };
}
