import { setTimeout as sleep } from 'node:timers/promises';

/** Waits `ms`, or not at all for 0, so an instant mock adds no timer tick per request. */
export const delay = (ms: number, signal: AbortSignal): Promise<void> =>
  ms > 0 ? sleep(ms, undefined, { signal }) : Promise.resolve();

/** Time to generate `tokens` tokens at `tokensPerSecond` after the first; 0 means instant. */
export const generationMs = (tokens: number, tokensPerSecond: number): number =>
  tokensPerSecond > 0 ? (Math.max(0, tokens - 1) * 1000) / tokensPerSecond : 0;

/**
 * Yields `items` in batches as they fall due: the first at once, item i at i / tokensPerSecond seconds.
 * Due times are measured from the start, so timer lateness never accumulates and high rates batch instead of
 * drifting. A rate of 0 yields everything in one batch.
 */
export async function* pace<T>(
  items: readonly T[],
  tokensPerSecond: number,
  signal: AbortSignal,
): AsyncGenerator<readonly T[]> {
  if (tokensPerSecond <= 0) {
    yield items;
    return;
  }
  const interval = 1000 / tokensPerSecond;
  const start = performance.now();
  let sent = 0;
  while (sent < items.length) {
    const due = Math.min(items.length, Math.floor((performance.now() - start) / interval) + 1);
    if (due > sent) {
      yield items.slice(sent, due);
      sent = due;
    } else {
      await sleep(start + sent * interval - performance.now(), undefined, { signal });
    }
  }
}
