import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Waits for `promise` at most `ms`: its value, or undefined when it rejects or is still pending by then.
 * The timer is an abortable `timers/promises` sleep, cancelled as soon as the promise settles.
 */
export async function settledWithin<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  const settled = new AbortController();
  const value = promise.then(
    (v) => v,
    () => undefined,
  );
  void value.then(() => settled.abort());
  // Rejects with an AbortError when the promise settled first: that is the normal way out, not a failure.
  await sleep(ms, undefined, { signal: settled.signal }).catch(() => {});
  return settled.signal.aborted ? value : undefined;
}
