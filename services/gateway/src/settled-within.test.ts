import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { settledWithin } from './settled-within.js';

describe('settledWithin', () => {
  it("gives the promise's value as soon as it settles, without waiting for the bound", async () => {
    const started = performance.now();
    expect(await settledWithin(sleep(5, 'value'), 5_000)).toBe('value');
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('gives undefined for a promise still pending at the bound, and for one that rejects', async () => {
    const started = performance.now();
    expect(await settledWithin(new Promise(() => {}), 30)).toBeUndefined();
    expect(performance.now() - started).toBeGreaterThanOrEqual(25);
    expect(await settledWithin(Promise.reject(new Error('down')), 5_000)).toBeUndefined();
  });

  it('leaves no timer behind once the promise settled', async () => {
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    await settledWithin(Promise.resolve(1), 60_000);
    expect(timers()).toBe(before);
  });
});
