import { describe, expect, it } from 'vitest';
import { ConfigError, LIMITS } from '@actionedx/shared';
import { generateKeyPairSync } from 'node:crypto';
import { DEFAULT_ROLE_LIMITS } from './admission/limits.js';
import { loadGatewayConfig } from './config.js';

const SECRET = 'config-test-secret-0123456789-abcdefgh';
const problemsOf = (env: Record<string, string>, opts?: Parameters<typeof loadGatewayConfig>[1]): string => {
  try {
    loadGatewayConfig(env, opts);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems.join('\n');
    throw e;
  }
  return '';
};

describe('loadGatewayConfig', () => {
  it('has the documented defaults', () => {
    const c = loadGatewayConfig({ JWT_SECRET: SECRET });
    expect(c).toMatchObject({
      port: 8001,
      host: '0.0.0.0',
      ackTimeoutMs: 2_000,
      heartbeatMs: 1_000,
      requestTimeoutMs: 120_000,
      maxAttempts: 3,
      bodyLimitBytes: LIMITS.bodyMaxBytes,
      wsSessionTtlSeconds: 3_600,
      wsPingIntervalMs: 30_000,
      shutdownGraceMs: 10_000,
      natsUrl: undefined,
      redisUrl: undefined,
      limiterRedisUrl: undefined,
      corsOrigins: [],
      opsPort: 9464,
      opsHost: '0.0.0.0',
      roleLimits: DEFAULT_ROLE_LIMITS,
      edge: {
        bodyBytes: LIMITS.bodyMaxBytes,
        jsonMaxDepth: 32,
        wsSendBufferBytes: 1024 * 1024,
        wsConnectionLeaseMs: 60_000,
        httpHeadersTimeoutMs: 10_000,
        httpRequestTimeoutMs: 30_000,
        httpKeepAliveTimeoutMs: 5_000,
      },
    });
    expect(c.auth).toMatchObject({ mode: 'required', adminApiKey: undefined, apiKeyCacheMs: 5_000 });
    expect(c.auth.jwt).toMatchObject({ issuer: 'actionedx', audience: 'actionedx-api', algorithms: ['HS256'], clockToleranceS: 30, roleClaim: 'role' });
    expect(c.gatewayId).toMatch(/^gw-[0-9a-f]{8}$/);
    expect(loadGatewayConfig({ JWT_SECRET: SECRET }).gatewayId).not.toBe(c.gatewayId);
  });

  it('reads the environment (empty strings mean unset)', () => {
    const c = loadGatewayConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      ACK_TIMEOUT_MS: '100',
      HEARTBEAT_MS: '50',
      MAX_ATTEMPTS: '5',
      GATEWAY_ID: 'gw_1',
      NATS_URL: 'nats://127.0.0.1:4222',
      REDIS_URL: '',
      AUTH_MODE: 'open',
    });
    expect(c).toMatchObject({ port: 0, host: '127.0.0.1', ackTimeoutMs: 100, heartbeatMs: 50, maxAttempts: 5 });
    expect(c.gatewayId).toBe('gw_1');
    expect(c.natsUrl).toBe('nats://127.0.0.1:4222');
    expect(c.redisUrl).toBeUndefined();
  });

  it('reports every bad variable at once', () => {
    let err: unknown;
    try {
      loadGatewayConfig({ PORT: 'eighty', HEARTBEAT_MS: '-1', GATEWAY_ID: 'has.dots', NATS_URL: 'http://x' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems.join('\n');
    for (const name of ['PORT', 'HEARTBEAT_MS', 'GATEWAY_ID', 'NATS_URL']) expect(problems).toContain(name);
  });

  it('requires authentication unless told otherwise, and a way in when it does', () => {
    expect(problemsOf({})).toMatch(/AUTH_MODE: required needs a way in/);
    expect(problemsOf({ ADMIN_API_KEY: 'k'.repeat(32) })).toBe('');
    expect(problemsOf({}, { defaultAuthMode: 'open' })).toBe('');
    expect(loadGatewayConfig({}, { defaultAuthMode: 'open' })).toMatchObject({ auth: { mode: 'open', jwt: undefined }, corsOrigins: ['*'] });
    expect(problemsOf({ AUTH_MODE: 'required' }, { defaultAuthMode: 'open' })).toMatch(/AUTH_MODE/);
    expect(problemsOf({ AUTH_MODE: 'maybe' })).toMatch(/AUTH_MODE/);
  });

  it('refuses CORS_ORIGINS=* with authentication on, weak secrets, unknown algorithms and keys that are not keys', () => {
    expect(problemsOf({ JWT_SECRET: SECRET, CORS_ORIGINS: '*' })).toMatch(/CORS_ORIGINS: may not be \*/);
    expect(problemsOf({ CORS_ORIGINS: '*', AUTH_MODE: 'open' })).toBe('');
    expect(problemsOf({ JWT_SECRET: 'short' })).toMatch(/JWT_SECRET: must be at least 32/);
    expect(problemsOf({ JWT_SECRET: SECRET, JWT_ALGORITHMS: 'none' })).toMatch(/JWT_ALGORITHMS/);
    expect(problemsOf({ JWT_SECRET: SECRET, JWT_ALGORITHMS: 'RS256' })).toMatch(/JWT_ALGORITHMS: RS256 needs JWT_PUBLIC_KEY or JWT_JWKS_URL/);
    expect(problemsOf({ JWT_PUBLIC_KEY: 'not a key' })).toMatch(/JWT_PUBLIC_KEY: is not a PEM public key/);
    expect(problemsOf({ ADMIN_API_KEY: 'too-short' })).toMatch(/ADMIN_API_KEY/);
    expect(problemsOf({ JWT_SECRET: SECRET, RATE_LIMITS: '{"user":{"requests_per_minute":0}}' })).toMatch(/RATE_LIMITS/);
    expect(problemsOf({ JWT_SECRET: SECRET, RATE_LIMITS: 'nope' })).toMatch(/RATE_LIMITS: is not JSON/);
  });

  it("pins a public key's own algorithm, and reads per-role limits as data", () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const c = loadGatewayConfig({ JWT_PUBLIC_KEY: pem, RATE_LIMITS: '{"user":{"requests_per_minute":7}}', CORS_ORIGINS: 'https://app.example' });
    expect(c.auth.jwt?.algorithms).toEqual(['ES256']);
    expect(c.auth.jwt?.secret).toBeUndefined();
    expect(c.roleLimits.user).toEqual({ ...DEFAULT_ROLE_LIMITS.user, requests_per_minute: 7 });
    expect(c.roleLimits.admin).toEqual(DEFAULT_ROLE_LIMITS.admin);
    expect(c.corsOrigins).toEqual(['https://app.example']);
  });
});
