import { randomUUID } from 'node:crypto';
import type { Logger } from '@actionedx/shared';
import { checkPositiveInteger } from './answer-store.js';
import type { CacheNamespace } from './cache-namespace.js';
import { awaitRelease, FlightSignals } from './flight-signals.js';
import type { FlightAttempt, FlightLease, FlightLock, WaitOptions, WaitOutcome } from './flight-lock.js';
import { FlightSubscriber } from './flight-subscriber.js';
import type { RedisGuard } from './redis-guard.js';

export interface RedisFlightLockOptions {
  /** How often a waiter reads the lock in case a notification was lost. Default 50 ms. */
  pollMs?: number;
}

/**
 * Single-flight locks on Redis, shared by every replica: `SET NX PX` with a random token, released and
 * extended by scripts that check the token, and a pub/sub notification on release so waiters on other
 * replicas wake at once (they also poll, so a lost notification costs one poll interval).
 */
export class RedisFlightLock implements FlightLock {
  private readonly signals = new FlightSignals();
  private readonly subscriber: FlightSubscriber;
  private readonly pollMs: number;
  private closed = false;

  constructor(
    private readonly deps: { guard: RedisGuard; namespace: CacheNamespace; logger: Logger },
    opts: RedisFlightLockOptions = {},
  ) {
    this.pollMs = opts.pollMs ?? 50;
    this.subscriber = new FlightSubscriber(deps.guard.redis, deps.namespace, this.signals, deps.logger);
  }

  async acquire(key: string, leaseMs: number): Promise<FlightAttempt> {
    const lockKey = this.deps.namespace.lockKey(key);
    checkPositiveInteger('leaseMs', leaseMs);
    const token = randomUUID();
    const attempt = await this.deps.guard.attempt((r) => r.set(lockKey, token, 'PX', leaseMs, 'NX'));
    if (attempt.outcome !== 'ok') return 'unavailable';
    return attempt.value === 'OK' ? this.lease(key, lockKey, token) : 'busy';
  }

  async adopt(key: string, token: string, leaseMs: number): Promise<FlightLease | undefined> {
    const lockKey = this.deps.namespace.lockKey(key);
    checkPositiveInteger('leaseMs', leaseMs);
    // The extend script checks the token: only the reservation's own holder gets the key.
    const attempt = await this.deps.guard.attempt((r) => r.flightExtend(lockKey, token, leaseMs));
    return attempt.outcome === 'ok' && attempt.value === 1 ? this.lease(key, lockKey, token) : undefined;
  }

  async release(key: string, token: string): Promise<void> {
    const { guard, namespace } = this.deps;
    const lockKey = namespace.lockKey(key);
    await guard.attempt((r) => r.flightRelease(lockKey, token, namespace.flightChannel(key)));
    // Waiters in this process need not wait for the round trip through pub/sub.
    this.signals.notify(key);
  }

  async isHeld(key: string): Promise<boolean> {
    if (this.closed) return false;
    const attempt = await this.deps.guard.attempt((r) => r.exists(this.deps.namespace.lockKey(key)));
    return attempt.outcome === 'ok' && attempt.value === 1;
  }

  waitForRelease(key: string, opts: WaitOptions): Promise<WaitOutcome> {
    const lockKey = this.deps.namespace.lockKey(key);
    if (this.closed) return Promise.resolve('unavailable');
    this.subscriber.ensureStarted();
    const isHeld = async (): Promise<boolean | null> => {
      if (this.closed) return null;
      const attempt = await this.deps.guard.attempt((r) => r.exists(lockKey));
      return attempt.outcome === 'ok' ? attempt.value === 1 : null;
    };
    return awaitRelease(this.signals.watch(key), isHeld, { signal: opts.signal, timeoutMs: opts.timeoutMs, pollMs: this.pollMs });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.signals.notifyAll();
    this.subscriber.close();
  }

  private lease(key: string, lockKey: string, token: string): FlightLease {
    const { guard } = this.deps;
    let released = false;
    return {
      key,
      token,
      release: async () => {
        if (released) return;
        released = true;
        await this.release(key, token);
      },
      extend: async (leaseMs) => {
        checkPositiveInteger('leaseMs', leaseMs);
        if (released) return false;
        const attempt = await guard.attempt((r) => r.flightExtend(lockKey, token, leaseMs));
        return attempt.outcome === 'ok' && attempt.value === 1;
      },
    };
  }
}
