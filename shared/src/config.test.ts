import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { CommonEnvSchema, ConfigError, env, loadConfig } from './config.js';
import { acceptRequestId, childTraceparent } from './context.js';

describe('loadConfig', () => {
  const Schema = z.object({ PORT: env.port(8001), NATS_URL: env.url(['nats']).optional(), FLAG: env.bool(false) });

  it('applies defaults and coerces', () => {
    expect(loadConfig(Schema, { PORT: '9000', FLAG: 'yes' })).toEqual({ PORT: 9000, FLAG: true });
    expect(loadConfig(Schema, { PORT: '' })).toEqual({ PORT: 8001, FLAG: false });
  });

  it('reports every bad variable at once', () => {
    try {
      loadConfig(Schema, { PORT: 'abc', NATS_URL: 'http://x', FLAG: 'maybe' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const problems = (err as ConfigError).problems.join('\n');
      expect(problems).toMatch(/PORT/);
      expect(problems).toMatch(/NATS_URL/);
      expect(problems).toMatch(/FLAG/);
    }
  });
});

describe('URL variables', () => {
  const Schema = CommonEnvSchema.extend({ OPENAI_BASE_URL: env.url(['http', 'https']).optional() });

  it('names each unparseable or wrong-scheme URL, together with every other problem, without echoing it', () => {
    let error: unknown;
    try {
      loadConfig(Schema, {
        REDIS_URL: 'redis//:s3cret@cache:6379',
        NATS_URL: 'not a url',
        OPENAI_BASE_URL: 'ftp://models.example',
        LOG_LEVEL: 'loud',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems).toHaveLength(4);
    expect(problems).toEqual(
      expect.arrayContaining([
        'REDIS_URL: is not a valid URL (expected redis:// or rediss://...)',
        'NATS_URL: is not a valid URL (expected nats:// or tls:// or ws:// or wss://...)',
        'OPENAI_BASE_URL: must be a http:// or https:// URL',
        expect.stringMatching(/^LOG_LEVEL: /),
      ]),
    );
    expect((error as ConfigError).message).not.toContain('s3cret');
  });

  it('accepts URLs of the expected schemes', () => {
    const cfg = loadConfig(Schema, {
      REDIS_URL: 'rediss://:pw@cache:6380/2',
      NATS_URL: 'nats://127.0.0.1:4222',
      OPENAI_BASE_URL: 'http://127.0.0.1:8090/v1',
    });
    expect(cfg).toMatchObject({ REDIS_URL: 'rediss://:pw@cache:6380/2', OPENAI_BASE_URL: 'http://127.0.0.1:8090/v1' });
  });
});

describe('request context', () => {
  it('keeps a safe client request id and replaces an unsafe one', () => {
    expect(acceptRequestId('abc-123')).toBe('abc-123');
    expect(acceptRequestId('a.b>c')).not.toBe('a.b>c');
    expect(acceptRequestId(undefined)).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('continues a W3C trace with a new span', () => {
    const parent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const child = childTraceparent(parent);
    expect(child).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
    expect(child).not.toBe(parent);
    expect(childTraceparent('garbage')).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  });
});

describe('CommonEnvSchema', () => {
  it('leaves LOG_PRETTY undefined when unset, so the logger can choose', async () => {
    const { CommonEnvSchema } = await import('./config.js');
    expect(loadConfig(CommonEnvSchema, {}).LOG_PRETTY).toBeUndefined();
    expect(loadConfig(CommonEnvSchema, { LOG_PRETTY: 'yes' }).LOG_PRETTY).toBe(true);
  });
});
