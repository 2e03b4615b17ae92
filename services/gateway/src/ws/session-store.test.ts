import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, createRedisClient, type Redis } from '@actionedx/shared';
import { GATEWAY_VERSION } from '../version.js';
import { MemorySessionStore } from './memory-session-store.js';
import { RedisSessionStore } from './redis-session-store.js';
import { sessionKey, type SessionMetadata, type SessionStore } from './session-store.js';

const logger = createLogger({ service: 'gateway', version: GATEWAY_VERSION, level: 'silent', pretty: false });
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const CONNECTED_AT = new Date().toISOString();

const session = (id: string): SessionMetadata => ({
  session_id: id,
  user_id: 'u1',
  connected_at: CONNECTED_AT,
  message_count: 3,
  mode: 'ally',
});

/** The behaviour every store must have. */
function contract(name: string, make: () => SessionStore): void {
  describe(`${name} session store`, () => {
    it('saves, loads and removes', async () => {
      const store = make();
      const id = `s-${randomUUID()}`;
      expect(await store.load(id)).toBeUndefined();
      await store.save(session(id));
      expect(await store.load(id)).toEqual(session(id));
      await store.save({ ...session(id), message_count: 4 });
      expect((await store.load(id))?.message_count).toBe(4);
      await store.remove(id);
      expect(await store.load(id)).toBeUndefined();
    });

    it('keeps ids with . : @ apart from each other', async () => {
      const store = make();
      const base = `s-${randomUUID()}`;
      const ids = [`${base}.a:b@c`, `${base}.a:b`, `${base}.a`];
      for (const [i, id] of ids.entries()) await store.save({ ...session(id), message_count: i });
      for (const [i, id] of ids.entries()) expect(await store.load(id)).toEqual({ ...session(id), message_count: i });
      for (const id of ids) await store.remove(id);
    });
  });
}

contract('memory', () => new MemorySessionStore(60));

describe('MemorySessionStore', () => {
  it('forgets a session after its TTL', async () => {
    let now = 1_000_000;
    const store = new MemorySessionStore(10, () => now);
    await store.save(session('s1'));
    now += 9_999;
    expect(await store.load('s1')).toBeDefined();
    now += 2;
    expect(await store.load('s1')).toBeUndefined();
  });
});

async function redisAnswers(): Promise<Redis | undefined> {
  const client = createRedisClient({ url: REDIS_URL, name: 'gateway-test', commandTimeoutMs: 500 });
  try {
    await new Promise<void>((resolve, reject) => {
      if (client.status === 'ready') return resolve();
      client.once('ready', () => resolve());
      setTimeout(() => reject(new Error('no redis')), 1_000);
    });
    return client;
  } catch {
    client.disconnect();
    return undefined;
  }
}

const redis = await redisAnswers();

const noRedis = redis === undefined ? ` (skipped: Redis not reachable at ${REDIS_URL})` : '';
describe.skipIf(redis === undefined)(`RedisSessionStore (real Redis)${noRedis}`, () => {
  afterAll(() => redis?.disconnect());
  contract('redis', () => new RedisSessionStore(redis!, 60, logger));

  it('stores JSON under ws_session:<id> with the TTL', async () => {
    const store = new RedisSessionStore(redis!, 120, logger);
    const id = `s-${randomUUID()}`;
    await store.save(session(id));
    expect(JSON.parse((await redis!.get(sessionKey(id)))!)).toEqual(session(id));
    const ttl = await redis!.ttl(sessionKey(id));
    expect(ttl).toBeGreaterThan(110);
    expect(ttl).toBeLessThanOrEqual(120);
    await store.remove(id);
  });

  it('encodes : and @ of an id in its key, and keeps the key of an id without them', async () => {
    expect(sessionKey('session-123')).toBe('ws_session:session-123');
    expect(sessionKey('a.b:c@d')).toBe('ws_session:a.b%3Ac%40d');
    const store = new RedisSessionStore(redis!, 60, logger);
    const id = `t.${randomUUID()}:u@example.org`;
    await store.save(session(id));
    expect(await redis!.exists(`ws_session:${encodeURIComponent(id)}`)).toBe(1);
    await store.remove(id);
  });

  it('ignores a value that is not session metadata', async () => {
    const id = `s-${randomUUID()}`;
    await redis!.set(sessionKey(id), '{"nope":true}', 'EX', 60);
    expect(await new RedisSessionStore(redis!, 60, logger).load(id)).toBeUndefined();
    await redis!.del(sessionKey(id));
  });
});

describe('RedisSessionStore without Redis', () => {
  let dead: Redis;
  beforeAll(() => {
    // A port nothing listens on: every command fails at once (no offline queue).
    dead = createRedisClient({ url: 'redis://127.0.0.1:1', name: 'gateway-test-dead', connectTimeoutMs: 100 });
  });
  afterAll(() => dead.disconnect());

  it('fails open: nothing throws, loads find nothing', async () => {
    const store = new RedisSessionStore(dead, 60, logger);
    await expect(store.save(session('s1'))).resolves.toBeUndefined();
    await expect(store.load('s1')).resolves.toBeUndefined();
    await expect(store.remove('s1')).resolves.toBeUndefined();
  });
});
