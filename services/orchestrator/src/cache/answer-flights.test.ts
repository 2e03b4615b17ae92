import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AppError, createCacheMetrics, createLogger, createRedisClient, type CacheMetrics, type Redis } from '@actionedx/shared';
import { AnswerFlights, type Computed, type FlightReservation } from './answer-flights.js';
import type { AnswerStore, CacheEntry } from './answer-store.js';
import { cacheKey } from './cache-key.js';
import { CacheNamespace } from './cache-namespace.js';
import type { FlightAttempt, FlightLock } from './flight-lock.js';
import { MemoryAnswerStore } from './memory-answer-store.js';
import { MemoryFlightLock } from './memory-flight-lock.js';
import { RedisAnswerStore } from './redis-answer-store.js';
import { RedisFlightLock } from './redis-flight-lock.js';
import { RedisGuard } from './redis-guard.js';

/**
 * Single flight as the pipeline uses it: `getOrCompute` on one replica and across two (Redis, and two
 * AnswerFlights over one memory store and lock), with a compute function the test controls.
 */

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const logger = createLogger({ service: 'flights-test', version: 'test', level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const entryOf = (response: string): CacheEntry => ({
  v: 1,
  response,
  suggestions: ['next'],
  model: 'mock-1',
  usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 },
  cost_usd: 0.001,
  created_at: Date.now(),
});

/** A computation the test drives: it streams `parts` one every `gapMs`, and records how it was called. */
class Model {
  calls = 0;
  aborted = 0;
  constructor(
    private readonly parts: string[] = ['Once ', 'upon ', 'a time.'],
    private readonly gapMs = 30,
    private readonly cacheable = true,
  ) {}

  readonly compute = async (onDelta: (d: string) => void, signal: AbortSignal): Promise<Computed> => {
    this.calls += 1;
    for (const part of this.parts) {
      await sleep(this.gapMs);
      if (signal.aborted) {
        this.aborted += 1;
        throw signal.reason;
      }
      onDelta(part);
    }
    return { entry: entryOf(this.parts.join('')), cacheable: this.cacheable };
  };
}

interface Replica {
  flights: AnswerFlights;
  store: AnswerStore;
  lock: FlightLock;
}

interface Cluster {
  a: Replica;
  b: Replica;
  metrics: CacheMetrics;
  close(): Promise<void>;
}

async function connected(redis: Redis): Promise<Redis> {
  if (redis.status !== 'ready') await once(redis, 'ready');
  return redis;
}

const backends: Array<{ name: string; open(prefix: string, leaseMs: number, pendingMs?: number): Promise<Cluster> }> = [
  {
    name: 'redis',
    async open(prefix, leaseMs, pendingMs = 5_000) {
      const metrics = createCacheMetrics(new Registry());
      const namespace = new CacheNamespace(prefix);
      const guards: RedisGuard[] = [];
      const replica = async (name: string): Promise<Replica> => {
        const redis = await connected(createRedisClient({ url: REDIS_URL, name: `${prefix}-${name}`, commandTimeoutMs: 2_000 }));
        const guard = new RedisGuard(redis, { metrics, logger }, { closeClient: true });
        guards.push(guard);
        const store = new RedisAnswerStore({ guard, namespace, metrics, logger });
        const lock = new RedisFlightLock({ guard, namespace, logger });
        return { store, lock, flights: new AnswerFlights(store, lock, { leaseMs, waitMs: 10_000, pendingMs, metrics }) };
      };
      const [a, b] = await Promise.all([replica('a'), replica('b')]);
      return {
        a,
        b,
        metrics,
        async close() {
          for (const r of [a, b]) await r.lock.close();
          const admin = guards[0]!.redis;
          const keys = await admin.keys(`${prefix}:*`);
          if (keys.length > 0) await admin.unlink(...keys);
          for (const g of guards) await g.close();
        },
      };
    },
  },
  {
    name: 'memory',
    async open(prefix, leaseMs, pendingMs = 5_000) {
      const metrics = createCacheMetrics(new Registry());
      const namespace = new CacheNamespace(prefix);
      const store = new MemoryAnswerStore({ namespace, metrics });
      const lock = new MemoryFlightLock({ namespace });
      // Two replicas over one store and lock: what two processes on one Redis see.
      const replica = (): Replica => ({ store, lock, flights: new AnswerFlights(store, lock, { leaseMs, waitMs: 10_000, pendingMs, metrics }) });
      return { a: replica(), b: replica(), metrics, close: () => lock.close() };
    },
  },
];

async function reservations(metrics: CacheMetrics, outcome: string): Promise<number> {
  const { values } = await metrics.flightReservations.get();
  return values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
}

/** The cache key of a global realtime_tutoring answer to `message`, under `prefix`. */
const keyOf = (message: string, prefix: string): string =>
  cacheKey(
    { task_type: 'realtime_tutoring', mode: 'ally', model: 'mock-1', prompt_version: '1', history: [], message, context: {}, scope: 'global' },
    prefix,
  );

async function counted(metrics: CacheMetrics, result: string): Promise<number> {
  const { values } = await metrics.operations.get();
  return values.find((v) => v.labels.operation === 'get' && v.labels.result === result)?.value ?? 0;
}

describe.each(backends)('AnswerFlights.getOrCompute ($name)', (backend) => {
  let prefix: string;
  let c: Cluster;
  const key = (message: string) => keyOf(message, prefix);

  /** One request: its chunks, and its result or error. */
  async function ask(r: Replica, k: string, model: Model, signal = new AbortController().signal) {
    const chunks: string[] = [];
    try {
      const result = await r.flights.getOrCompute(k, { ttlSeconds: 60, onDelta: (d) => chunks.push(d), signal, compute: model.compute });
      return { chunks, text: chunks.join(''), source: result.source, entry: result.entry };
    } catch (err) {
      return { chunks, text: chunks.join(''), source: undefined, error: err };
    }
  }

  beforeEach(async () => {
    prefix = `ai_cache_flights_${randomBytes(6).toString('hex')}`;
    c = await backend.open(prefix, 600);
  });
  afterEach(async () => {
    await c.close();
  });

  it('computes a miss once, stores it, and answers the repeat from the store', async () => {
    const model = new Model();
    const k = key('first');
    const first = await ask(c.a, k, model);
    expect(first).toMatchObject({ text: 'Once upon a time.', source: 'model' });
    expect(first.chunks).toEqual(['Once ', 'upon ', 'a time.']);
    const second = await ask(c.b, k, model);
    expect(second).toMatchObject({ text: 'Once upon a time.', source: 'cache', chunks: ['Once upon a time.'] });
    expect(model.calls).toBe(1);
    expect(await c.a.store.get(k, { record: false })).toMatchObject({ response: 'Once upon a time.' });
  });

  it('makes one computation for 10 identical requests on two replicas; every one gets the whole text', async () => {
    const model = new Model(['a', 'b', 'c', 'd'], 40);
    const k = key('stampede');
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => ask(i % 2 ? c.b : c.a, k, model)));
    expect(model.calls).toBe(1);
    for (const r of results) expect(r.text).toBe('abcd');
    expect(results.filter((r) => r.source === 'model')).toHaveLength(1);
    expect(results.filter((r) => r.source === 'peer')).toHaveLength(9);
    expect(await counted(c.metrics, 'miss')).toBe(1);
    expect(await counted(c.metrics, 'coalesced')).toBe(9);
    await sleep(50);
    expect(await c.a.store.stats()).toMatchObject({ misses: 1, coalesced: 9, hits: 0 });
  });

  it('streams the live chunks to a request that joins late, from the first one', async () => {
    const model = new Model(['1', '2', '3', '4', '5'], 40);
    const k = key('late joiner');
    const leader = ask(c.a, k, model);
    await sleep(100);
    const joiner = await ask(c.a, k, model);
    expect(joiner).toMatchObject({ text: '12345', source: 'peer' });
    expect(joiner.chunks.length).toBeGreaterThan(1);
    expect((await leader).text).toBe('12345');
  });

  it('tells current followers of a reset, and replays only what came after it to a late joiner', async () => {
    const k = key('reset');
    const compute = async (onDelta: (d: string) => void, _signal: AbortSignal, onReset: () => void): Promise<Computed> => {
      onDelta('broken ');
      await sleep(40);
      onReset();
      onDelta('Whole ');
      await sleep(60);
      onDelta('answer.');
      return { entry: entryOf('Whole answer.'), cacheable: true };
    };
    const seen = (log: string[]) => ({ onDelta: (d: string) => log.push(d), onReset: () => log.push('<reset>') });
    const early: string[] = [];
    const late: string[] = [];
    const signal = new AbortController().signal;
    const first = c.a.flights.getOrCompute(k, { ttlSeconds: 60, ...seen(early), signal, compute });
    await sleep(70);
    const second = c.a.flights.getOrCompute(k, { ttlSeconds: 60, ...seen(late), signal, compute });
    await Promise.all([first, second]);
    expect(early).toEqual(['broken ', '<reset>', 'Whole ', 'answer.']);
    expect(late).toEqual(['Whole ', 'answer.']);
  });

  it('keeps computing for the others when one of three identical requests leaves', async () => {
    const model = new Model(['one ', 'two ', 'three ', 'four'], 50);
    const k = key('one leaves');
    const leaving = new AbortController();
    const requests = [ask(c.a, k, model, leaving.signal), ask(c.a, k, model), ask(c.a, k, model)];
    await sleep(80);
    leaving.abort(new Error('client gone'));
    const [left, ...stayed] = await Promise.all(requests);
    expect(left!.error).toBeInstanceOf(Error);
    for (const r of stayed) expect(r.text).toBe('one two three four');
    expect(model.calls).toBe(1);
    expect(model.aborted).toBe(0);
  });

  it('keeps computing for the other when one of two identical requests leaves', async () => {
    const model = new Model(['one ', 'two ', 'three'], 50);
    const k = key('one of two leaves');
    const leaving = new AbortController();
    const requests = [ask(c.a, k, model, leaving.signal), ask(c.a, k, model)];
    await sleep(80);
    leaving.abort(new Error('client gone'));
    const [left, stayed] = await Promise.all(requests);
    expect(left!.error).toBeInstanceOf(Error);
    expect(stayed).toMatchObject({ text: 'one two three' });
    expect(model.aborted).toBe(0);
  });

  it('lets a request already gone when it arrives leave at once, while the flight goes on for the others', async () => {
    const model = new Model(['a', 'b', 'c', 'd'], 50);
    const k = key('arrives gone');
    let leaderDone = false;
    const leader = ask(c.a, k, model).finally(() => (leaderDone = true));
    await sleep(20);
    const gone = new AbortController();
    gone.abort(new Error('left during the lookup'));
    const late = await ask(c.a, k, model, gone.signal);
    expect(late.error).toMatchObject({ message: 'left during the lookup' });
    expect(leaderDone).toBe(false);
    expect((await leader).text).toBe('abcd');
    expect(model.aborted).toBe(0);
  });

  it("stops waiting for another replica's flight, and never computes, once every request behind it has left", async () => {
    const k = key('waiters leave');
    // Another replica holds the key for long, computing nothing this test can see.
    const held = await c.a.lock.acquire(k, 10_000);
    if (typeof held !== 'object') throw new Error(`expected a lease, got ${held}`);
    try {
      const model = new Model(['never'], 5);
      const leaving = new AbortController();
      const request = ask(c.b, k, model, leaving.signal);
      await sleep(50);
      expect(c.b.flights.inFlight).toBe(1);
      leaving.abort(new Error('client gone'));
      expect((await request).error).toMatchObject({ message: 'client gone' });
      // The flight itself ends too, well before the holder's lease would: nothing waits on a key nobody wants.
      await vi.waitFor(() => expect(c.b.flights.inFlight).toBe(0), { timeout: 2_000 });
      expect(model.calls).toBe(0);
    } finally {
      await held.release();
    }
  });

  it('re-checks the store under the lock: an answer stored between the miss and the lease is not computed again', async () => {
    const k = key('stored meanwhile');
    await c.a.store.set(k, entryOf('stored by another replica'), 60);
    // A store whose first lookup misses, as when another replica stores the answer just after it.
    const racing: AnswerStore = Object.create(c.b.store, {
      get: { value: (key: string, opts?: { record?: boolean }) => (opts?.record === false ? c.b.store.get(key, opts) : Promise.resolve(null)) },
    });
    const flights = new AnswerFlights(racing, c.b.lock, { leaseMs: 600 });
    const model = new Model(['computed again'], 5);
    const chunks: string[] = [];
    const result = await flights.getOrCompute(k, { ttlSeconds: 60, onDelta: (d) => chunks.push(d), signal: new AbortController().signal, compute: model.compute });
    expect(result.source).toBe('peer');
    expect(chunks.join('')).toBe('stored by another replica');
    expect(model.calls).toBe(0);
  });

  it('aborts the computation when every request waiting for it is gone', async () => {
    const model = new Model(['x', 'y', 'z'], 60);
    const k = key('all leave');
    const controllers = [new AbortController(), new AbortController()];
    const requests = controllers.map((ctl) => ask(c.a, k, model, ctl.signal));
    await sleep(30);
    for (const ctl of controllers) ctl.abort(new Error('gone'));
    await Promise.all(requests);
    await sleep(150);
    expect(model.aborted).toBe(1);
    expect(await c.a.store.get(k, { record: false })).toBeNull();
  });

  it('never stores an answer that may not be cached; the next request computes again', async () => {
    const model = new Model(['cut sh'], 10, false);
    const k = key('not cacheable');
    expect(await ask(c.a, k, model)).toMatchObject({ text: 'cut sh', source: 'model' });
    expect(await ask(c.b, k, model)).toMatchObject({ source: 'model' });
    expect(model.calls).toBe(2);
  });

  it('lets a waiter compute itself when the leader fails, and shares nothing of the failure', async () => {
    const k = key('leader fails');
    const failing = new Model(['partial'], 10);
    const broken = async (onDelta: (d: string) => void, signal: AbortSignal): Promise<Computed> => {
      await failing.compute(onDelta, signal);
      throw new Error('upstream broke');
    };
    const good = new Model(['fine'], 10);
    const leader = c.a.flights
      .getOrCompute(k, { ttlSeconds: 60, onDelta: () => {}, signal: new AbortController().signal, compute: broken })
      .catch((err: unknown) => err);
    await sleep(2);
    const waiter = await ask(c.b, k, good);
    expect(await leader).toMatchObject({ message: 'upstream broke' });
    expect(waiter).toMatchObject({ text: 'fine', source: 'model' });
  });

  it('takes a dead holder\'s key over once its short lease runs out', async () => {
    const k = key('holder died');
    // A holder that took the lock and never renews it, as a killed replica.
    expect(typeof (await c.a.lock.acquire(k, 600))).toBe('object');
    const started = performance.now();
    const r = await ask(c.b, k, new Model(['took over'], 5));
    expect(r).toMatchObject({ text: 'took over', source: 'model' });
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('renews its lease while computing longer than the lease', async () => {
    const slow = new Model(['s', 'l', 'o', 'w'], 400); // 1.6 s against a 600 ms lease
    const k = key('slow answer');
    const leader = ask(c.a, k, slow);
    await sleep(1_000);
    // Still held: a second replica must not start its own computation.
    expect(await c.b.lock.acquire(k, 600)).toBe('busy');
    const other = new Model(['other'], 5);
    const follower = await ask(c.b, k, other);
    expect(other.calls).toBe(0);
    expect(follower).toMatchObject({ text: 'slow', source: 'peer' });
    expect((await leader).source).toBe('model');
  });
});

describe.each(backends)('AnswerFlights reservations of queued misses ($name)', (backend) => {
  let prefix: string;
  let c: Cluster;
  const key = (message: string) => keyOf(message, prefix);
  const reserved = async (r: Replica, k: string): Promise<FlightReservation> => {
    const reservation = await r.flights.reserve(k);
    if (typeof reservation !== 'object') throw new Error(`expected a reservation, got ${reservation}`);
    return reservation;
  };
  const compute = (r: Replica, k: string, model: Model, reservation?: string) =>
    r.flights.getOrCompute(k, { ttlSeconds: 60, onDelta: () => {}, signal: new AbortController().signal, compute: model.compute, skipLookup: true, reservation });
  const follow = (r: Replica, k: string) => r.flights.follow(k, { onDelta: () => {}, signal: new AbortController().signal });

  beforeEach(async () => {
    prefix = `ai_cache_reserve_${randomBytes(6).toString('hex')}`;
    // A pending lease far longer than any wait below: whatever ends sooner was not the lease running out.
    c = await backend.open(prefix, 600, 5_000);
  });
  afterEach(async () => {
    await c.close();
  });

  it('makes an identical miss busy while one is reserved, and shows the key as being computed', async () => {
    const k = key('reserved once');
    await reserved(c.a, k);
    expect(await c.b.flights.reserve(k)).toBe('busy');
    expect(await c.b.flights.lookup(k)).toEqual({ entry: null, computing: true });
    expect(await reservations(c.metrics, 'reserved')).toBe(1);
    expect(await reservations(c.metrics, 'busy')).toBe(1);
  });

  it('adopts the reservation in the model lane: one computation, at once, and the followers get its answer', async () => {
    const k = key('adopted');
    const reservation = await reserved(c.a, k);
    const followers = [follow(c.a, k), follow(c.b, k), follow(c.b, k)];
    const model = new Model(['one ', 'answer'], 20);
    const started = performance.now();
    const result = await compute(c.b, k, model, reservation.token);
    expect(result.source).toBe('model');
    // Not after the 5 s pending lease: the flight took the reserved lock over instead of waiting for it.
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(model.calls).toBe(1);
    for (const f of await Promise.all(followers)) expect(f).toMatchObject({ source: 'peer', entry: { response: 'one answer' } });
    expect(await reservations(c.metrics, 'adopted')).toBe(1);
    // Released after the answer was stored: the next miss reserves again.
    expect(await c.a.lock.isHeld(k)).toBe(false);
  });

  it('acquires the lock as before when the reservation ran out before a slot took the job', async () => {
    await c.close();
    c = await backend.open(prefix, 600, 200);
    const k = key('reservation expired');
    const reservation = await reserved(c.a, k);
    await sleep(300);
    const model = new Model(['late'], 5);
    expect((await compute(c.b, k, model, reservation.token)).source).toBe('model');
    expect(model.calls).toBe(1);
    expect(await reservations(c.metrics, 'expired')).toBe(1);
    expect(await c.a.store.get(k, { record: false })).toMatchObject({ response: 'late' });
  });

  it("waits for the holder when its reservation ran out and another miss's reservation holds the key", async () => {
    await c.close();
    c = await backend.open(prefix, 600, 200);
    const k = key('taken over');
    const first = await reserved(c.a, k);
    await sleep(300);
    const second = await reserved(c.b, k);
    const model = new Model(['from the second'], 5);
    // The second job's slot adopts its own reservation and computes; the first job's flight waits and reads it.
    const late = compute(c.a, k, model, first.token);
    await sleep(50);
    expect((await compute(c.b, k, model, second.token)).source).toBe('model');
    expect(await late).toMatchObject({ source: 'peer', entry: { response: 'from the second' } });
    expect(model.calls).toBe(1);
  });

  it('frees the waiters at once when a dropped job releases its reservation, and the key can be reserved again', async () => {
    const k = key('dropped');
    const reservation = await reserved(c.a, k);
    const waiting = follow(c.b, k);
    await sleep(50);
    const started = performance.now();
    await reservation.release();
    // Nothing was stored: the follower gets no answer (its request goes to the queue itself), well before 5 s.
    expect(await waiting).toBeUndefined();
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(typeof (await c.b.flights.reserve(k))).toBe('object');
    expect(await reservations(c.metrics, 'released')).toBe(1);
  });

  it('never lets a stale reservation release the flight that holds the key now', async () => {
    const k = key('stale release');
    const reservation = await reserved(c.a, k);
    const model = new Model(['x', 'y', 'z'], 60);
    const running = compute(c.b, k, model, reservation.token);
    await sleep(50);
    await c.a.flights.releaseReservation(k, 'another-token');
    expect(await c.a.lock.isHeld(k)).toBe(true);
    await running;
    expect(model.calls).toBe(1);
  });

  it('lets a request waiting here join the reserved flight when it starts here: its chunks live, and it holds the flight', async () => {
    const k = key('followed live');
    const reservation = await reserved(c.a, k);
    const seen: string[] = [];
    const following = c.a.flights.follow(k, { onDelta: (d) => seen.push(d), signal: new AbortController().signal });
    await sleep(50);
    const model = new Model(['one ', 'two ', 'three'], 60);
    const leaving = new AbortController();
    const job = c.a.flights.getOrCompute(k, { ttlSeconds: 60, onDelta: () => {}, signal: leaving.signal, compute: model.compute, skipLookup: true, reservation: reservation.token });
    job.catch(() => {});
    // The first chunk reaches the waiting request before the answer is done ...
    await expect.poll(() => seen.length, { timeout: 2_000 }).toBeGreaterThan(0);
    expect(seen.join('')).not.toBe('one two three');
    // ... and the queued job's own client leaving does not stop the computation it waits for.
    leaving.abort(new Error('client gone'));
    await expect(job).rejects.toThrow('client gone');
    expect(await following).toMatchObject({ source: 'peer', entry: { response: 'one two three' } });
    expect(seen.join('')).toBe('one two three');
    expect(model.calls).toBe(1);
    expect(model.aborted).toBe(0);
  });

  it('hands the key to a flight of this process that waits for it when a reserved job joins that flight', async () => {
    const k = key('joins a waiting flight');
    const reservation = await reserved(c.a, k);
    const model = new Model(['shared'], 5);
    // A job queued without the reservation (the gateway queued it) runs first and waits for the key ...
    const first = compute(c.a, k, model);
    await sleep(50);
    // ... then the reserved job's slot joins that flight: the reservation is let go, not waited out for 5 s.
    const started = performance.now();
    const [a, b] = await Promise.all([first, compute(c.a, k, model, reservation.token)]);
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(a.source).toBe('model');
    expect(b.source).toBe('peer');
    expect(model.calls).toBe(1);
  });
});

describe('AnswerFlights with a scripted lock', () => {
  const setUp = (lock: FlightLock, leaseMs = 1_000) => {
    const store = new MemoryAnswerStore({ namespace: new CacheNamespace('ai_cache_scripted'), metrics: createCacheMetrics(new Registry()) });
    const k = cacheKey(
      { task_type: 'collaboration', mode: 'ally', model: 'm', prompt_version: '1', history: [], message: 'x', context: {}, scope: 'user:u' },
      'ai_cache_scripted',
    );
    const flights = new AnswerFlights(store, lock, { leaseMs, waitMs: 1_000 });
    const get = (compute: Model['compute']) =>
      flights.getOrCompute(k, { ttlSeconds: 5, onDelta: () => {}, signal: new AbortController().signal, compute });
    return { store, k, get };
  };
  const down: FlightLock = {
    acquire: async (): Promise<FlightAttempt> => 'unavailable',
    waitForRelease: async () => 'unavailable',
    close: async () => {},
  };

  it('refuses a lease that is not a positive integer', () => {
    expect(() => setUp(down, 0)).toThrow(/leaseMs/);
  });

  it('computes itself after three rounds of flights elsewhere that stored nothing (never waits forever)', async () => {
    let waits = 0;
    const neverFree: FlightLock = {
      acquire: async (): Promise<FlightAttempt> => 'busy',
      waitForRelease: async () => (waits++, 'released'),
      close: async () => {},
    };
    const { store, k, get } = setUp(neverFree);
    const model = new Model(['mine'], 1);
    expect((await get(model.compute)).source).toBe('model');
    expect(waits).toBe(3);
    expect(model.calls).toBe(1);
    expect(await store.get(k, { record: false })).toMatchObject({ response: 'mine' });
  });

  it('fails open through a computation longer than a lease renewal, with no lease to renew or release', async () => {
    const { store, k, get } = setUp(down, 30);
    const model = new Model(['slow ', 'but ', 'fine'], 20); // 60 ms: a lease of 30 ms would be renewed twice
    expect((await get(model.compute)).source).toBe('model');
    expect(await store.get(k, { record: false })).toMatchObject({ response: 'slow but fine' });
  });

  it("fails open and passes the model's error through unchanged", async () => {
    const { get } = setUp(down);
    const failing = async (): Promise<Computed> => {
      throw new AppError('upstream_rate_limited');
    };
    await expect(get(failing)).rejects.toMatchObject({ code: 'upstream_rate_limited' });
  });
});

describe('AnswerFlights when the lock cannot coordinate', () => {
  it('computes without waiting (fails open)', async () => {
    const metrics = createCacheMetrics(new Registry());
    const namespace = new CacheNamespace('ai_cache_down');
    const store = new MemoryAnswerStore({ namespace, metrics });
    const down: FlightLock = {
      acquire: async (): Promise<FlightAttempt> => 'unavailable',
      isHeld: async () => false,
      waitForRelease: async () => 'unavailable',
      close: async () => {},
    };
    const flights = new AnswerFlights(store, down, { leaseMs: 1_000 });
    const model = new Model(['ok'], 1);
    const k = cacheKey(
      { task_type: 'collaboration', mode: 'ally', model: 'm', prompt_version: '1', history: [], message: 'x', context: {}, scope: 'user:u' },
      'ai_cache_down',
    );
    const result = await flights.getOrCompute(k, { ttlSeconds: 5, onDelta: () => {}, signal: new AbortController().signal, compute: model.compute });
    expect(result.source).toBe('model');
    expect(await store.get(k, { record: false })).toMatchObject({ response: 'ok' });
  });
});
