import type { WaitOutcome } from './flight-lock.js';

/** One waiter's doorbell: rings on a notification for its key, on its poll timer, or on abort. */
export interface FlightWatch {
  /** Resolves on the next notification (or one that came since the last call), after `ms`, or on abort. */
  next(ms: number, signal?: AbortSignal): Promise<void>;
  dispose(): void;
}

/**
 * Wakes the waiters of a key in this process. Notifications are hints, never the only path: a waiter also
 * polls, so a lost notification costs at most one poll interval.
 */
export class FlightSignals {
  private readonly watches = new Map<string, Set<() => void>>();

  watch(key: string): FlightWatch {
    let pending = false;
    let wake: (() => void) | undefined;
    const ring = (): void => {
      if (wake) wake();
      else pending = true;
    };
    this.add(key, ring);
    return {
      next: (ms, signal) =>
        new Promise<void>((resolve) => {
          if (pending || signal?.aborted) {
            pending = false;
            resolve();
            return;
          }
          const done = (): void => {
            clearTimeout(timer);
            signal?.removeEventListener('abort', done);
            wake = undefined;
            resolve();
          };
          const timer = setTimeout(done, ms);
          signal?.addEventListener('abort', done, { once: true });
          wake = done;
        }),
      dispose: () => this.remove(key, ring),
    };
  }

  notify(key: string): void {
    for (const ring of this.watches.get(key) ?? []) ring();
  }

  notifyAll(): void {
    for (const rings of this.watches.values()) for (const ring of rings) ring();
  }

  private add(key: string, ring: () => void): void {
    const rings = this.watches.get(key);
    if (rings) rings.add(ring);
    else this.watches.set(key, new Set([ring]));
  }

  private remove(key: string, ring: () => void): void {
    const rings = this.watches.get(key);
    rings?.delete(ring);
    if (rings?.size === 0) this.watches.delete(key);
  }
}

export interface AwaitReleaseOptions {
  signal?: AbortSignal | undefined;
  timeoutMs: number;
  pollMs: number;
}

/**
 * The waiting loop both locks share: read whether the key is still held, settle once it is not, else sleep
 * until a notification or the next poll. `isHeld` returning null means the backend failed.
 */
export async function awaitRelease(
  watch: FlightWatch,
  isHeld: () => Promise<boolean | null>,
  opts: AwaitReleaseOptions,
): Promise<WaitOutcome> {
  const deadline = Date.now() + opts.timeoutMs;
  try {
    while (!opts.signal?.aborted) {
      const held = await isHeld();
      if (held === null) return 'unavailable';
      if (!held) return 'released';
      const remaining = deadline - Date.now();
      if (remaining <= 0) return 'timeout';
      await watch.next(Math.min(opts.pollMs, remaining), opts.signal);
    }
    return 'aborted';
  } finally {
    watch.dispose();
  }
}
