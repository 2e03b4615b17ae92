import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisClient, type Redis } from '@actionedx/shared';
import type { CollabSession, CollabStore } from './collab-store.js';
import { MemoryCollabStore } from './memory-collab-store.js';
import { RedisCollabStore } from './redis-collab-store.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const fresh = (owner = 'alice'): CollabSession => ({
  session_id: `cs_${randomBytes(16).toString('hex')}`,
  owner,
  mode: 'ally',
  title: 'Review',
  join_token: randomBytes(24).toString('base64url'),
  created_at: new Date().toISOString(),
});

/** The rules every collaboration store keeps, in memory and in Redis alike. */
function contract(name: string, make: () => CollabStore): void {
  describe(`${name} collaboration store`, () => {
    it('keeps the session, its owner first, a member cap, and never removes the owner', async () => {
      const store = make();
      const s = fresh();
      expect(await store.get(s.session_id)).toBeUndefined();
      expect(await store.addMember(s.session_id, 'bob', 5)).toBe('missing');
      await store.create(s);
      expect(await store.get(s.session_id)).toEqual(s);
      expect(await store.addMember(s.session_id, 'bob', 3)).toBe('added');
      expect(await store.addMember(s.session_id, 'bob', 3)).toBe('already');
      expect(await store.addMember(s.session_id, 'carol', 3)).toBe('added');
      expect(await store.addMember(s.session_id, 'dave', 3)).toBe('full');
      expect([...(await store.members(s.session_id))]).toEqual([['alice', 'owner'], ['bob', 'member'], ['carol', 'member']]);
      expect(await store.removeMember(s.session_id, 'alice')).toBe(false);
      expect(await store.removeMember(s.session_id, 'bob')).toBe(true);
      expect(await store.removeMember(s.session_id, 'bob')).toBe(false);
      expect(await store.role(s.session_id, 'bob')).toBeUndefined();
      expect(await store.role(s.session_id, 'alice')).toBe('owner');
      await store.keepAlive(s.session_id);
      await store.keepAlive(`cs_${'f'.repeat(32)}`); // a session that is gone stays gone
      expect(await store.get(`cs_${'f'.repeat(32)}`)).toBeUndefined();
      await store.setMode(s.session_id, 'oracle');
      expect((await store.get(s.session_id))?.mode).toBe('oracle');
    });

    it('counts live sockets per user; an entry nobody renews expires', async () => {
      const store = make();
      const s = fresh();
      await store.create(s);
      await store.touchPresence(s.session_id, 'gw1.1', 'alice', 5_000);
      await store.touchPresence(s.session_id, 'gw2.1', 'alice', 5_000);
      await store.touchPresence(s.session_id, 'gw2.2', 'bob', 150);
      expect(await store.presence(s.session_id)).toEqual(new Map([['alice', 2], ['bob', 1]]));
      await sleep(300);
      expect(await store.presence(s.session_id)).toEqual(new Map([['alice', 2]]));
      await store.dropPresence(s.session_id, 'gw1.1', 'alice');
      expect(await store.presence(s.session_id)).toEqual(new Map([['alice', 1]]));
    });

    it('gives the turn to one holder at a time; a lease nobody renews frees it', async () => {
      const store = make();
      const s = fresh();
      await store.create(s);
      expect(await store.acquireTurn(s.session_id, 'req-1', 200)).toBe(true);
      expect(await store.acquireTurn(s.session_id, 'req-2', 200)).toBe(false);
      expect(await store.renewTurn(s.session_id, 'req-2', 200)).toBe(false);
      await store.releaseTurn(s.session_id, 'req-2'); // not the holder: nothing happens
      expect(await store.acquireTurn(s.session_id, 'req-2', 200)).toBe(false);
      expect(await store.renewTurn(s.session_id, 'req-1', 200)).toBe(true);
      await store.releaseTurn(s.session_id, 'req-1');
      expect(await store.acquireTurn(s.session_id, 'req-2', 150)).toBe(true);
      await sleep(300);
      expect(await store.acquireTurn(s.session_id, 'req-3', 1_000)).toBe(true);
    });
  });
}

contract('memory', () => new MemoryCollabStore());

describe('on Redis', () => {
  let redis: Redis;
  beforeAll(async () => {
    redis = createRedisClient({ url: REDIS_URL, name: 'collab-store-test' });
    // No offline queue: commands wait for the connection here.
    if (redis.status !== 'ready') await new Promise((resolve) => redis.once('ready', resolve));
  });
  afterAll(async () => {
    await redis.quit();
  });
  contract('redis', () => new RedisCollabStore(redis, 600));
});
