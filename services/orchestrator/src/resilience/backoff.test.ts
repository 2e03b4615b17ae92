import { describe, expect, it } from 'vitest';
import { backoffDelay, retryAfterMs } from './backoff.js';
import { ConcurrencyLimit } from './concurrency-limit.js';

const headers = (h: Record<string, string>) => new Headers(h);

describe('backoffDelay', () => {
  it('doubles per retry, with jitter between half and all of it, and is capped', () => {
    expect(backoffDelay(0, { baseMs: 200 }, () => 0)).toBe(100);
    expect(backoffDelay(0, { baseMs: 200 }, () => 1)).toBe(200);
    expect(backoffDelay(2, { baseMs: 200 }, () => 1)).toBe(800);
    expect(backoffDelay(10, { baseMs: 200, maxMs: 1000 }, () => 1)).toBe(1000);
  });
});

describe('retryAfterMs', () => {
  it('reads retry-after-ms first, then retry-after in seconds or as a date', () => {
    expect(retryAfterMs(headers({ 'retry-after-ms': '150', 'retry-after': '9' }))).toBe(150);
    expect(retryAfterMs(headers({ 'retry-after': '2' }))).toBe(2000);
    expect(retryAfterMs(headers({ 'retry-after': new Date(10_000).toUTCString() }), 7_000)).toBe(3000);
    expect(retryAfterMs(headers({ 'retry-after': 'soon' }))).toBeUndefined();
    expect(retryAfterMs(headers({}))).toBeUndefined();
    expect(retryAfterMs(undefined)).toBeUndefined();
  });
});

describe('ConcurrencyLimit', () => {
  it('refuses past its maximum and frees a slot once per release', () => {
    const limit = new ConcurrencyLimit(1);
    const release = limit.tryAcquire()!;
    expect(limit.tryAcquire()).toBeUndefined();
    release();
    release();
    expect(limit.inUse).toBe(0);
    expect(limit.tryAcquire()).toBeDefined();
    expect(new ConcurrencyLimit(0).tryAcquire()).toBeDefined();
  });
});
