import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import type { Registry } from 'prom-client';
import { MongoServerSelectionError, type MongoClient } from 'mongodb';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AppError, createDbMetrics, createLogger, createMetricsRegistry, type DbMetrics } from '@actionedx/shared';
import {
  CONVERSATIONS_COLLECTION,
  MemoryConversationStore,
  MongoConversationStore,
  StoreError,
  createConversationStore,
  createMongoClient,
  type ConversationStore,
  type ConversationTurn,
} from './index.js';
import { turnBytes } from './memory-conversation-store.js';
import { HISTORY_INDEX_NAME, TTL_INDEX_NAME } from './mongo-queries.js';

const MONGO_URL = process.env.MONGO_URL;
const logger = createLogger({ service: 'store-test', version: 'test', level: 'silent', pretty: false });

// Recent times: MongoDB's TTL monitor would delete turns older than the 90-day default mid-test.
const BASE = Date.now() - 3_600_000;
let seq = 0;
function turn(over: Partial<ConversationTurn> = {}): ConversationTurn {
  const n = seq++;
  return {
    request_id: `req-${randomUUID()}`,
    user_id: 'u1',
    mode: 'strategist',
    task_type: 'realtime_tutoring',
    message: `question ${n}`,
    response: `answer ${n}`,
    model: 'gpt-4o-mini',
    cached: false,
    usage: { prompt_tokens: 10, completion_tokens: 20, total_tokens: 30 },
    cost_usd: 0.001,
    latency_ms: 120,
    created_at: new Date(BASE + n * 1000),
    ...over,
  };
}
const at = (i: number) => new Date(BASE + i * 1000);

async function operations(registry: Registry, operation: string, status: 'ok' | 'error'): Promise<number> {
  const metric = await registry.getSingleMetric('db_operations_total')!.get();
  const v = metric.values.find(
    (x) => x.labels.operation === operation && x.labels.status === status && x.labels.collection === CONVERSATIONS_COLLECTION,
  );
  return v?.value ?? 0;
}
async function timings(registry: Registry, operation: string): Promise<number> {
  const metric = await registry.getSingleMetric('db_operation_latency_seconds')!.get();
  const values = metric.values as { metricName?: string; labels: Record<string, string | number | undefined>; value: number }[];
  const v = values.find(
    (x) => x.metricName === 'db_operation_latency_seconds_count' && x.labels.operation === operation,
  );
  return v?.value ?? 0;
}
function freshMetrics(): { registry: Registry; metrics: DbMetrics } {
  const registry = createMetricsRegistry('test', { defaultMetrics: false });
  return { registry, metrics: createDbMetrics(registry) };
}

type MakeStore = (metrics: DbMetrics) => Promise<ConversationStore>;

/** What every `ConversationStore` must do; the pipeline cannot tell them apart. */
function conversationStoreContract(name: string, make: MakeStore): void {
  describe(`conversation store contract: ${name}`, () => {
    let store: ConversationStore;
    let registry: Registry;

    beforeEach(async () => {
      const fresh = freshMetrics();
      registry = fresh.registry;
      store = await make(fresh.metrics);
    });
    afterEach(async () => {
      await store.close();
    });

    it('returns an appended turn as it was given', async () => {
      const t = turn({ session_id: 's1', mode: 'oracle', task_type: 'strategy_audit' });
      await store.appendTurn(t);
      expect(await store.history({ user_id: 'u1' })).toEqual([t]);
      const noSession = turn();
      await store.appendTurn(noSession);
      const got = await store.history({ user_id: 'u1' });
      expect(got[1]).toEqual(noSession);
      expect(got[1]).not.toHaveProperty('session_id');
      expect(got[1]!.created_at).toBeInstanceOf(Date);
    });

    it("lists the user's sessions, most recently used first, with their first message and turn count", async () => {
      await store.appendTurn(turn({ session_id: 's1', created_at: at(0), message: 'a' }));
      await store.appendTurn(turn({ session_id: 's2', created_at: at(1), message: 'b' }));
      await store.appendTurn(turn({ session_id: 's1', created_at: at(2), message: 'c' }));
      await store.appendTurn(turn({ created_at: at(3), message: 'no session' }));
      await store.appendTurn(turn({ user_id: 'u2', session_id: 's3', created_at: at(4), message: 'not u1' }));
      expect(await store.sessions({ user_id: 'u1' })).toEqual([
        { session_id: 's1', turns: 2, first_message: 'a', last_at: at(2) },
        { session_id: 's2', turns: 1, first_message: 'b', last_at: at(1) },
      ]);
      expect((await store.sessions({ user_id: 'u1', limit: 1 })).map((x) => x.session_id)).toEqual(['s1']);
      expect(await store.sessions({ user_id: 'nobody' })).toEqual([]);
      await expect(store.sessions({ user_id: 'u1', limit: 0 })).rejects.toThrow(RangeError);
    });

    it('orders history oldest to newest by creation time, whatever the append order', async () => {
      const turns = [3, 0, 2, 1].map((i) => turn({ created_at: at(i), message: `m${i}` }));
      for (const t of turns) await store.appendTurn(t);
      expect((await store.history({ user_id: 'u1' })).map((t) => t.message)).toEqual(['m0', 'm1', 'm2', 'm3']);
    });

    it('returns the newest 20 by default, the newest `limit` when asked, and never more than 200', async () => {
      const turns = Array.from({ length: 205 }, (_, i) => turn({ created_at: at(i), message: `m${i}` }));
      for (const t of turns) await store.appendTurn(t);
      const byDefault = await store.history({ user_id: 'u1' });
      expect(byDefault.map((t) => t.message)).toEqual(turns.slice(-20).map((t) => t.message));
      const five = await store.history({ user_id: 'u1', limit: 5 });
      expect(five.map((t) => t.message)).toEqual(['m200', 'm201', 'm202', 'm203', 'm204']);
      expect(await store.history({ user_id: 'u1', limit: 10_000 })).toHaveLength(200);
    });

    it('rejects a limit that is not a positive integer, without counting a store failure', async () => {
      for (const limit of [0, -1, 1.5, Number.NaN]) {
        await expect(store.history({ user_id: 'u1', limit })).rejects.toBeInstanceOf(RangeError);
      }
      expect(await operations(registry, 'history', 'error')).toBe(0);
    });

    it('filters by session, and never mixes users', async () => {
      await store.appendTurn(turn({ session_id: 's1', message: 'a' }));
      await store.appendTurn(turn({ session_id: 's2', message: 'b' }));
      await store.appendTurn(turn({ message: 'c' }));
      await store.appendTurn(turn({ user_id: 'u2', session_id: 's1', message: 'other user' }));
      expect((await store.history({ user_id: 'u1', session_id: 's1' })).map((t) => t.message)).toEqual(['a']);
      expect((await store.history({ user_id: 'u1', session_id: 's2' })).map((t) => t.message)).toEqual(['b']);
      expect((await store.history({ user_id: 'u1' })).map((t) => t.message)).toEqual(['a', 'b', 'c']);
      expect((await store.history({ user_id: 'u2' })).map((t) => t.message)).toEqual(['other user']);
      expect(await store.history({ user_id: 'nobody' })).toEqual([]);
      expect(await store.history({ user_id: 'u1', session_id: 'none' })).toEqual([]);
    });

    it('stores a request once, however often it is appended (a retried job)', async () => {
      const t = turn();
      await store.appendTurn(t);
      await store.appendTurn({ ...t, response: 'second attempt' });
      expect(await store.history({ user_id: 'u1' })).toEqual([t]);
      expect((await store.usage({ user_id: 'u1' })).requests).toBe(1);
    });

    it('is not changed by mutating what was passed in or handed out', async () => {
      const t = turn();
      const original = structuredClone(t);
      await store.appendTurn(t);
      t.response = 'changed';
      t.usage.prompt_tokens = 999;
      const [got] = await store.history({ user_id: 'u1' });
      got!.message = 'changed';
      got!.created_at.setTime(0);
      expect(await store.history({ user_id: 'u1' })).toEqual([original]);
    });

    it('sums the usage ledger: cached turns count as requests but add no tokens and no cost', async () => {
      const usage = (p: number, c: number) => ({ prompt_tokens: p, completion_tokens: c, total_tokens: p + c });
      await store.appendTurn(turn({ usage: usage(100, 50), cost_usd: 0.25, created_at: at(0) }));
      await store.appendTurn(turn({ usage: usage(10, 5), cost_usd: 0.5, session_id: 's', created_at: at(10) }));
      // A cached turn carrying the original answer's figures still adds nothing.
      await store.appendTurn(turn({ cached: true, usage: usage(100, 50), cost_usd: 0.25, created_at: at(20) }));
      await store.appendTurn(turn({ user_id: 'u2', usage: usage(1, 2), cost_usd: 1, created_at: at(30) }));

      const u1 = await store.usage({ user_id: 'u1' });
      expect(u1).toEqual({ requests: 3, cached: 1, prompt_tokens: 110, completion_tokens: 55, cost_usd: expect.any(Number) });
      expect(u1.cost_usd).toBeCloseTo(0.75, 10);

      const all = await store.usage();
      expect(all).toMatchObject({ requests: 4, cached: 1, prompt_tokens: 111, completion_tokens: 57 });
      expect(all.cost_usd).toBeCloseTo(1.75, 10);

      const since = await store.usage({ user_id: 'u1', since: at(10) });
      expect(since).toMatchObject({ requests: 2, cached: 1, prompt_tokens: 10, completion_tokens: 5 });
      expect(since.cost_usd).toBeCloseTo(0.5, 10);
      expect((await store.usage({ since: at(30) })).requests).toBe(1);
    });

    it('reports zeros when nothing matches', async () => {
      const zero = { requests: 0, cached: 0, prompt_tokens: 0, completion_tokens: 0, cost_usd: 0 };
      expect(await store.usage()).toEqual(zero);
      await store.appendTurn(turn());
      expect(await store.usage({ user_id: 'nobody' })).toEqual(zero);
      expect(await store.usage({ since: new Date(Date.now() + 60_000) })).toEqual(zero);
    });

    it('counts and times every operation in db_operations_total and db_operation_latency_seconds', async () => {
      await store.appendTurn(turn());
      await store.appendTurn(turn());
      await store.history({ user_id: 'u1' });
      await store.usage({ user_id: 'u1' });
      const health = await store.health();
      expect(health.status).not.toBe('unhealthy');
      expect(health.latency_ms).toEqual(expect.any(Number));
      expect(await operations(registry, 'append', 'ok')).toBe(2);
      expect(await operations(registry, 'history', 'ok')).toBe(1);
      expect(await operations(registry, 'usage', 'ok')).toBe(1);
      expect(await operations(registry, 'health', 'ok')).toBe(1);
      for (const op of ['history', 'usage', 'health']) expect(await timings(registry, op)).toBe(1);
      expect(await timings(registry, 'append')).toBe(2);
    });

    it('once closed, rejects with a plain StoreError (not an AppError) and counts the failure', async () => {
      await store.close();
      const err = await store.appendTurn(turn()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreError);
      expect(err).not.toBeInstanceOf(AppError);
      expect(err).toMatchObject({ name: 'StoreError', operation: 'append', collection: 'conversations' });
      expect((err as Error).message).toMatch(/append on conversations failed: the store is closed/);
      await expect(store.history({ user_id: 'u1' })).rejects.toBeInstanceOf(StoreError);
      await expect(store.usage()).rejects.toBeInstanceOf(StoreError);
      expect(await store.health()).toEqual({ status: 'unhealthy', latency_ms: null });
      expect(await operations(registry, 'append', 'error')).toBe(1);
      expect(await operations(registry, 'history', 'error')).toBe(1);
      expect(await operations(registry, 'health', 'error')).toBe(1);
      await store.close(); // closing twice is harmless
    });
  });
}

conversationStoreContract('memory', async (metrics) => new MemoryConversationStore({ metrics }));

describe('MemoryConversationStore', () => {
  it('reports itself as the memory store', async () => {
    const store = new MemoryConversationStore({ metrics: freshMetrics().metrics });
    expect(await store.health()).toEqual({ status: 'memory', latency_ms: 0 });
    expect(store.maxTurns).toBe(10_000);
  });

  it('keeps at most maxTurns, dropping the oldest appended, across users and many evictions', async () => {
    const store = new MemoryConversationStore({ metrics: freshMetrics().metrics }, { maxTurns: 3 });
    const turns = Array.from({ length: 20 }, (_, i) => turn({ user_id: i % 2 ? 'odd' : 'even', created_at: at(i), message: `m${i}` }));
    for (const t of turns) await store.appendTurn(t);
    expect(store.size).toBe(3);
    expect((await store.history({ user_id: 'even' })).map((t) => t.message)).toEqual(['m18']);
    expect((await store.history({ user_id: 'odd' })).map((t) => t.message)).toEqual(['m17', 'm19']);
    expect((await store.usage()).requests).toBe(3);
    expect((await store.usage({ user_id: 'odd' })).requests).toBe(2);
  });

  it('keeps at most maxBytes, the oldest going first, and counts what it drops back out (the newest stays)', async () => {
    const big = 'x'.repeat(16_000);
    const one = turnBytes(turn({ message: big, response: 'the answer', request_id: 'r-0000' }));
    const store = new MemoryConversationStore({ metrics: freshMetrics().metrics }, { maxBytes: 5 * one });
    for (let i = 0; i < 2_000; i++) await store.appendTurn(turn({ request_id: `r-${String(i).padStart(4, '0')}`, created_at: at(i), message: big, response: 'the answer' }));
    expect(store.size).toBe(5);
    expect(store.bytes).toBeLessThanOrEqual(5 * one);
    expect((await store.history({ user_id: turn().user_id })).map((t) => t.request_id)).toEqual(['r-1995', 'r-1996', 'r-1997', 'r-1998', 'r-1999']);
    expect((await store.usage()).requests).toBe(5);
    // One turn over the whole bound is still kept, alone.
    const tiny = new MemoryConversationStore({ metrics: freshMetrics().metrics }, { maxBytes: 10 });
    await tiny.appendTurn(turn({ request_id: 'a' }));
    await tiny.appendTurn(turn({ request_id: 'b' }));
    expect(tiny.size).toBe(1);
    expect((await tiny.history({ user_id: turn().user_id })).map((t) => t.request_id)).toEqual(['b']);
  });

  it('rejects a bound that is not a positive integer', () => {
    expect(() => new MemoryConversationStore({ metrics: freshMetrics().metrics }, { maxTurns: 0 })).toThrow(RangeError);
    expect(() => new MemoryConversationStore({ metrics: freshMetrics().metrics }, { maxBytes: 0 })).toThrow(RangeError);
  });
});

describe('createConversationStore', () => {
  it('keeps turns in memory when no MongoDB URL is given', async () => {
    const store = await createConversationStore({ metrics: freshMetrics().metrics, logger, maxTurns: 7 });
    expect(store).toBeInstanceOf(MemoryConversationStore);
    expect((store as MemoryConversationStore).maxTurns).toBe(7);
    await store.close();
  });
});

/** The driver's failure paths need no server: these always run. */
describe('MongoConversationStore without a server', () => {
  let deadUrl: string;

  beforeAll(async () => {
    // A port nothing listens on: bind one, then free it.
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    await new Promise<void>((resolve) => server.close(() => resolve()));
    deadUrl = `mongodb://127.0.0.1:${port}/?directConnection=true`;
  });

  it('fails to connect within the default server-selection timeout (2 s), with a StoreError', async () => {
    const started = Date.now();
    const err = await createConversationStore({ mongoUrl: deadUrl, metrics: freshMetrics().metrics, logger }).catch(
      (e: unknown) => e,
    );
    const elapsed = Date.now() - started;
    expect(err).toBeInstanceOf(StoreError);
    expect(err).toMatchObject({ operation: 'connect' });
    expect((err as StoreError).cause).toBeInstanceOf(MongoServerSelectionError);
    expect((err as Error).message).not.toContain('mongodb://');
    expect(elapsed).toBeLessThan(2000 + 3000);
  });

  it('fails at once for a malformed URL', async () => {
    const err = await MongoConversationStore.connect('http://localhost', 'db', {
      metrics: freshMetrics().metrics,
      logger,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    // Thrown by the driver's URL parser, whose MongoParseError is its own class of the same name.
    expect((err as StoreError).cause).toMatchObject({ name: 'MongoParseError' });
  });

  describe('a store whose server is gone', () => {
    let client: MongoClient;
    let registry: Registry;
    let store: MongoConversationStore;

    beforeAll(() => {
      client = createMongoClient(deadUrl, { serverSelectionTimeoutMs: 200 });
      const fresh = freshMetrics();
      registry = fresh.registry;
      store = new MongoConversationStore({ client, dbName: 'unreachable', metrics: fresh.metrics, logger });
    });
    afterAll(async () => {
      await store.close();
      await client.close();
    });

    it('rejects every operation with a StoreError and counts each as an error', async () => {
      const err = await store.appendTurn(turn()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreError);
      expect(err).not.toBeInstanceOf(AppError);
      expect((err as StoreError).cause).toBeInstanceOf(MongoServerSelectionError);
      await expect(store.history({ user_id: 'u1' })).rejects.toBeInstanceOf(StoreError);
      await expect(store.usage({ user_id: 'u1' })).rejects.toBeInstanceOf(StoreError);
      for (const op of ['append', 'history', 'usage']) {
        expect(await operations(registry, op, 'error')).toBe(1);
        expect(await operations(registry, op, 'ok')).toBe(0);
        expect(await timings(registry, op)).toBe(1);
      }
    });

    it('reports unhealthy instead of throwing', async () => {
      expect(await store.health()).toEqual({ status: 'unhealthy', latency_ms: null });
      expect(await operations(registry, 'health', 'error')).toBe(1);
    });
  });
});

/** Against a real server: the documented skip when MONGO_URL is not set (there is no MongoDB on the dev machines). */
describe.runIf(!!MONGO_URL)(`MongoConversationStore on MONGO_URL${MONGO_URL ? '' : ' (skipped: MONGO_URL not set)'}`, () => {
  const url = MONGO_URL ?? '';
  const dbNames: string[] = [];
  let admin: MongoClient;
  const connect = (metrics: DbMetrics, ttlDays?: number, dbName = `actionedx_test_${randomUUID().slice(0, 8)}`) => {
    dbNames.push(dbName);
    return MongoConversationStore.connect(url, dbName, { metrics, logger }, ttlDays === undefined ? {} : { ttlDays });
  };

  beforeAll(async () => {
    admin = createMongoClient(url);
    await admin.connect();
  });
  afterAll(async () => {
    for (const name of dbNames) await admin.db(name).dropDatabase();
    await admin.close();
  });

  conversationStoreContract('mongo', (metrics) => connect(metrics));

  it('reports healthy with a ping time', async () => {
    const store = await connect(freshMetrics().metrics);
    const health = await store.health();
    expect(health.status).toBe('healthy');
    expect(health.latency_ms).toBeGreaterThanOrEqual(0);
    await store.close();
  });

  it('creates the history index and a 90-day TTL index, and changes the TTL when reconfigured', async () => {
    const dbName = `actionedx_test_${randomUUID().slice(0, 8)}`;
    const first = await connect(freshMetrics().metrics, undefined, dbName);
    const indexes = async () => admin.db(dbName).collection(CONVERSATIONS_COLLECTION).indexes();
    const byName = async (name: string) => (await indexes()).find((i) => i.name === name);
    expect((await byName(HISTORY_INDEX_NAME))?.key).toEqual({ user_id: 1, session_id: 1, created_at: -1 });
    expect(await byName(TTL_INDEX_NAME)).toMatchObject({ key: { created_at: 1 }, expireAfterSeconds: 90 * 86_400 });
    await first.close();

    const second = await connect(freshMetrics().metrics, 7, dbName);
    expect(await byName(TTL_INDEX_NAME)).toMatchObject({ expireAfterSeconds: 7 * 86_400 });
    await second.close();
  });
});
