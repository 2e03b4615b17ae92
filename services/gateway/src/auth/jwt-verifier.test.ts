import { generateKeyPairSync, createHmac, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, base64url } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JwtConfig } from './auth-config.js';
import { AuthFailure, JwtVerifier } from './jwt-verifier.js';

const SECRET = 'jwt-verifier-test-secret-0123456789abcdef';
const ISS = 'https://issuer.test';
const AUD = 'actionedx-test';
const now = () => Math.floor(Date.now() / 1000);

const base = (over: Partial<JwtConfig>): JwtConfig => ({
  secret: undefined,
  publicKey: undefined,
  jwksUrl: undefined,
  issuer: ISS,
  audience: AUD,
  algorithms: ['HS256'],
  clockToleranceS: 5,
  roleClaim: 'role',
  ...over,
});

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
const publicPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();

type Claims = Record<string, unknown>;
/** A signed token; `claims` override the valid defaults (undefined removes one). */
async function sign(key: KeyObject | Uint8Array, alg: string, claims: Claims = {}, header: Record<string, unknown> = {}): Promise<string> {
  const all: Claims = { sub: 'alice', iss: ISS, aud: AUD, iat: now(), exp: now() + 600, ...claims };
  for (const [k, v] of Object.entries(all)) if (v === undefined) delete all[k];
  return new SignJWT(all).setProtectedHeader({ alg, typ: 'JWT', ...header }).sign(key);
}
const hs = (claims?: Claims) => sign(new TextEncoder().encode(SECRET), 'HS256', claims);

const b64json = (v: unknown) => base64url.encode(JSON.stringify(v));
/** An unsecured token (`alg: none`), as an attacker writes it. */
const unsecured = () => `${b64json({ alg: 'none', typ: 'JWT' })}.${b64json({ sub: 'alice', iss: ISS, aud: AUD, exp: now() + 600 })}.`;
/** HS256 with the server's *public key* as the HMAC secret: the RS/HS confusion attack. */
const confused = () => {
  const input = `${b64json({ alg: 'HS256', typ: 'JWT' })}.${b64json({ sub: 'mallory', iss: ISS, aud: AUD, exp: now() + 600 })}`;
  return `${input}.${createHmac('sha256', publicPem).update(input).digest('base64url')}`;
};
const tamper = (token: string) => {
  const [h, p, s] = token.split('.');
  const payload = JSON.parse(Buffer.from(p!, 'base64url').toString());
  return `${h}.${b64json({ ...payload, sub: 'mallory' })}.${s}`;
};

async function reason(verifier: JwtVerifier, token: string): Promise<string> {
  try {
    await verifier.verify(token);
    return 'accepted';
  } catch (err) {
    expect(err).toBeInstanceOf(AuthFailure);
    return (err as AuthFailure).reason;
  }
}

describe('JwtVerifier with an HS256 secret', () => {
  const v = new JwtVerifier(base({ secret: new TextEncoder().encode(SECRET) }));

  it('accepts a valid token and returns its claims', async () => {
    expect(await v.verify(await hs({ role: 'admin' }))).toMatchObject({ sub: 'alice', role: 'admin' });
  });

  it.each([
    ['alg none', unsecured, 'alg_not_allowed'],
    ['RS256 (an algorithm not pinned)', () => sign(rsa.privateKey, 'RS256'), 'alg_not_allowed'],
    ['HS512 (not pinned either)', () => sign(new TextEncoder().encode(SECRET), 'HS512'), 'alg_not_allowed'],
    ['another secret', () => sign(new TextEncoder().encode(`${SECRET}-forged`), 'HS256'), 'bad_signature'],
    ['a tampered payload', async () => tamper(await hs()), 'bad_signature'],
    ['a wrong audience', () => hs({ aud: 'someone-else' }), 'wrong_claims'],
    ['a wrong issuer', () => hs({ iss: 'https://evil.example' }), 'wrong_claims'],
    ['no exp', () => hs({ exp: undefined }), 'wrong_claims'],
    ['no sub', () => hs({ sub: undefined }), 'wrong_claims'],
    ['an expired token (past the tolerance)', () => hs({ exp: now() - 60 }), 'expired'],
    ['nbf in the future (past the tolerance)', () => hs({ nbf: now() + 120 }), 'not_yet_valid'],
    ['garbage', async () => 'not.a.jwt', 'malformed'],
    ['two parts', async () => 'abc.def', 'malformed'],
  ])('refuses %s', async (_what, make, expected) => {
    expect(await reason(v, await make())).toBe(expected);
  });

  it('allows a small clock skew', async () => {
    expect(await reason(v, await hs({ exp: now() - 2 }))).toBe('accepted');
    expect(await reason(v, await hs({ nbf: now() + 2 }))).toBe('accepted');
  });
});

describe('JwtVerifier with an RSA public key', () => {
  const v = new JwtVerifier(base({ publicKey: rsa.publicKey, algorithms: ['RS256'] }));

  it('accepts a token signed with the private key', async () => {
    expect(await reason(v, await sign(rsa.privateKey, 'RS256'))).toBe('accepted');
  });

  it.each([
    ['the RS/HS confusion (HS256 keyed with the public key)', async () => confused(), 'alg_not_allowed'],
    ['alg none', async () => unsecured(), 'alg_not_allowed'],
    ['another key pair', () => sign(other.privateKey, 'RS256'), 'bad_signature'],
    ['a tampered payload', async () => tamper(await sign(rsa.privateKey, 'RS256')), 'bad_signature'],
    ['a wrong audience', () => sign(rsa.privateKey, 'RS256', { aud: 'x' }), 'wrong_claims'],
    ['an expired token', () => sign(rsa.privateKey, 'RS256', { exp: now() - 3_600 }), 'expired'],
  ])('refuses %s', async (_what, make, expected) => {
    expect(await reason(v, await make())).toBe(expected);
  });

  it('refuses HS256 even when both a secret and a public key are configured, unless signed with the secret', async () => {
    const both = new JwtVerifier(
      base({ secret: new TextEncoder().encode(SECRET), publicKey: rsa.publicKey, algorithms: ['HS256', 'RS256'] }),
    );
    expect(await reason(both, confused())).toBe('bad_signature');
    expect(await reason(both, await hs())).toBe('accepted');
    expect(await reason(both, await sign(rsa.privateKey, 'RS256'))).toBe('accepted');
  });
});

describe('JwtVerifier with a JWKS URL', () => {
  let server: Server;
  let url = '';
  let fetches = 0;
  beforeAll(async () => {
    const jwk = { ...(await exportJWK(rsa.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    server = createServer((_req, res) => {
      fetches += 1;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('finds the key by kid, caches the set, and refuses an unknown kid', async () => {
    const v = new JwtVerifier(base({ jwksUrl: url, algorithms: ['RS256'] }));
    expect(await reason(v, await sign(rsa.privateKey, 'RS256', {}, { kid: 'k1' }))).toBe('accepted');
    expect(await reason(v, await sign(rsa.privateKey, 'RS256', {}, { kid: 'k1' }))).toBe('accepted');
    expect(fetches).toBe(1);
    expect(await reason(v, await sign(other.privateKey, 'RS256', {}, { kid: 'k2' }))).toBe('unknown_key');
    expect(await reason(v, await sign(other.privateKey, 'RS256', {}, { kid: 'k1' }))).toBe('bad_signature');
    expect(await reason(v, confused())).toBe('alg_not_allowed');
  });

  it('says the keys are unavailable when the JWKS cannot be fetched', async () => {
    const v = new JwtVerifier(base({ jwksUrl: 'http://127.0.0.1:1/jwks.json', algorithms: ['RS256'] }));
    expect(await reason(v, await sign(rsa.privateKey, 'RS256', {}, { kid: 'k1' }))).toBe('unavailable');
  });
});
