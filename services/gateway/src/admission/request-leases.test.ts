import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, createMetricsRegistry, createRedisClient, type Redis } from '@actionedx/shared';
import { metricValue } from '@actionedx/testkit';
import { createGatewayMetrics } from '../metrics.js';
import { GATEWAY_VERSION } from '../version.js';
import { Admission, AdmissionRefusal } from './admission.js';
import { DEFAULT_ROLE_LIMITS } from './limits.js';
import { LEASE_MS, RequestLeases } from './request-leases.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const logger = createLogger({ service: 'gateway', version: GATEWAY_VERSION, level: 'silent', pretty: false });
const redis: Redis = createRedisClient({ url: REDIS_URL, name: 'gateway-leases-test', commandTimeoutMs: 2_000 });
beforeAll(async () => {
  if (redis.status !== 'ready') await new Promise((resolve) => redis.once('ready', resolve));
});
afterAll(() => redis.disconnect());

/** Leases on keys of their own, with a clock the test moves, counting their round trips. */
function leases(prefix = `t:${randomUUID()}`) {
  const clock = { offset: 0 };
  const trips = { taken: 0, returned: 0 };
  const leases = new RequestLeases(
    redis,
    { requests: (key) => `${prefix}:req:${key}`, tokens: (key) => `${prefix}:tok:${key}`, spend: (day) => `${prefix}:usd:${day}` },
    { now: () => Date.now() + clock.offset, windowS: 60, onTrip: (event, n) => (trips[event] += n), onGiveBackError: () => undefined },
  );
  const counter = async (key: string) => Number(await redis.get(`${prefix}:req:${key}`));
  return { leases, clock, trips, counter, requestsKey: (key: string) => `${prefix}:req:${key}` };
}

const admissionOnRedis = () => {
  const registry = createMetricsRegistry('gateway', { defaultMetrics: false });
  return { registry, admission: new Admission({ kind: 'redis', redis }, { metrics: createGatewayMetrics(registry), logger }) };
};

describe('requests leased in blocks from Redis (real Redis)', () => {
  it('serves a busy caller from one block: one round trip for 60 calls, headers counting down exactly', async () => {
    const { registry, admission } = admissionOnRedis();
    const subject = { key: `user:${randomUUID()}`, limits: { ...DEFAULT_ROLE_LIMITS.user, requests_per_minute: 600 } };
    const remaining: number[] = [];
    for (let i = 0; i < 60; i++) {
      const ticket = await admission.admit(subject);
      remaining.push(Number(/"requests";r=(\d+)/.exec(ticket.headers.RateLimit ?? '')![1]));
    }
    expect(remaining).toEqual(Array.from({ length: 60 }, (_, i) => 599 - i));
    expect(await metricValue(registry, 'gateway_admission_leases_total', { event: 'taken' })).toBe(1);
    expect(Number(await redis.get(`rl:req:${subject.key}`))).toBe(60);
    await admission.close();
  });

  it('never lets replicas together admit more than the quota, and a burst on one replica waits for one trip', async () => {
    const replicas = [admissionOnRedis(), admissionOnRedis(), admissionOnRedis()];
    const subject = { key: `user:${randomUUID()}`, limits: { ...DEFAULT_ROLE_LIMITS.user, requests_per_minute: 60 } };
    const results = await Promise.allSettled(Array.from({ length: 200 }, (_, i) => replicas[i % 3]!.admission.admit(subject)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(60);
    for (const r of results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')) {
      expect((r.reason as AdmissionRefusal).code).toBe('rate_limited');
    }
    let trips = 0;
    for (const { registry } of replicas) trips += (await metricValue(registry, 'gateway_admission_leases_total', { event: 'taken' })) ?? 0;
    // Calls that arrive while a lease is on its way are served by the next one, sized for them: a few trips per replica.
    expect(trips).toBeLessThanOrEqual(12);
    for (const { admission } of replicas) await admission.close();
  });

  it('gives back what a lapsed lease did not use, at the sweep and at the next lease', async () => {
    const { leases: l, clock, counter } = leases();
    await l.take('a', 'a:day', 600);
    expect(await counter('a')).toBe(60);
    clock.offset += LEASE_MS + 1;
    await l.take('a', 'a:day', 600);
    // 59 given back, a new block of 60 taken.
    expect(await counter('a')).toBe(61);
    clock.offset += LEASE_MS + 1;
    await l.sweep();
    expect(await counter('a')).toBe(2);
    expect(l.size).toBe(0);
    await l.close();
  });

  it('gives back every unused point when the replica closes', async () => {
    const { leases: l, counter } = leases();
    await l.take('a', 'a:day', 600);
    await l.take('b', 'b:day', 50);
    expect([await counter('a'), await counter('b')]).toEqual([60, 5]);
    await l.close();
    expect([await counter('a'), await counter('b')]).toEqual([1, 1]);
  });

  it('does not give points back to a window that has ended', async () => {
    const { leases: l, clock, counter, requestsKey } = leases();
    await l.take('a', 'a:day', 600);
    // The window (60 s) is over: its points are gone with it; the next lease must not lower the new window's count.
    clock.offset += 61_000;
    await redis.set(requestsKey('a'), 7, 'EX', 60);
    await l.take('a', 'a:day', 600);
    expect(await counter('a')).toBe(67);
    await l.close();
  });

  it('refuses a caller over its quota from the lease until it lapses: one trip, not one per refused call', async () => {
    const { leases: l, clock, trips } = leases();
    const readings = [];
    for (let i = 0; i < 50; i++) readings.push((await l.take('a', 'a:day', 5)).requests.consumedPoints);
    expect(readings.slice(0, 5)).toEqual([1, 2, 3, 4, 5]);
    expect(readings.slice(5).every((n) => n > 5)).toBe(true);
    // Five blocks of 1 (a quota of 5 leases one point at a time), then the refusal's.
    expect(trips.taken).toBe(6);
    clock.offset += LEASE_MS + 1;
    expect((await l.take('a', 'a:day', 5)).requests.consumedPoints).toBeGreaterThan(5);
    expect(trips.taken).toBe(7);
    await l.close();
  });

  it("counts this replica's charges at once, and another replica's at its next lease", async () => {
    const [a, b] = [admissionOnRedis(), admissionOnRedis()];
    const subject = { key: `user:${randomUUID()}`, limits: { ...DEFAULT_ROLE_LIMITS.user, requests_per_minute: 600, tokens_per_minute: 100 } };
    await b.admission.admit(subject);
    (await a.admission.admit(subject)).charge({ cached: false, usage: { total_tokens: 100 }, cost_usd: 0 });
    await new Promise((r) => setImmediate(r));
    await expect(a.admission.admit(subject)).rejects.toMatchObject({ code: 'token_rate_limited' });
    // b's lease was read before the charge: it admits until the lease lapses, then sees it.
    await expect(b.admission.admit(subject)).resolves.toBeDefined();
    await expect
      .poll(async () => (await b.admission.admit(subject).catch((e: AdmissionRefusal) => e.code)) === 'token_rate_limited', { timeout: 3 * LEASE_MS, interval: 100 })
      .toBe(true);
    for (const { admission } of [a, b]) await admission.close();
  });

  it('fails closed when the lease cannot be taken: every call waiting for it is refused with limiter_unavailable', async () => {
    const dead = createRedisClient({ url: 'redis://127.0.0.1:1', name: 'gateway-leases-dead', connectTimeoutMs: 100, commandTimeoutMs: 200 });
    try {
      const registry = createMetricsRegistry('gateway', { defaultMetrics: false });
      const admission = new Admission({ kind: 'redis', redis: dead }, { metrics: createGatewayMetrics(registry), logger });
      const subject = { key: `user:${randomUUID()}`, limits: DEFAULT_ROLE_LIMITS.user };
      const calls = await Promise.allSettled([admission.admit(subject), admission.admit(subject), admission.admit(subject)]);
      expect(calls.map((c) => c.status === 'rejected' && (c.reason as { code: string }).code)).toEqual(Array(3).fill('limiter_unavailable'));
      expect(await metricValue(registry, 'gateway_limiter_errors_total', { operation: 'admit' })).toBe(3);
      await admission.close();
    } finally {
      dead.disconnect();
    }
  });
});
