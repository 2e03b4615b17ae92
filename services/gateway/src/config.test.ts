import { describe, expect, it } from 'vitest';
import { ConfigError, LIMITS } from '@actionedx/shared';
import { loadGatewayConfig } from './config.js';

describe('loadGatewayConfig', () => {
  it('has the documented defaults', () => {
    const c = loadGatewayConfig({});
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
    });
    expect(c.gatewayId).toMatch(/^gw-[0-9a-f]{8}$/);
    expect(loadGatewayConfig({}).gatewayId).not.toBe(c.gatewayId);
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
});
