import { randomUUID } from 'node:crypto';
import { checkPositiveInteger } from './answer-store.js';
import type { CacheNamespace } from './cache-namespace.js';
import { awaitRelease, FlightSignals } from './flight-signals.js';
import type { FlightAttempt, FlightLease, FlightLock, WaitOptions, WaitOutcome } from './flight-lock.js';

export interface MemoryFlightLockOptions {
  /** How often a waiter re-reads the lock, to notice an expired lease. Default 50 ms. */
  pollMs?: number;
}

interface Held {
  token: string;
  expiresAt: number;
}

/** Single-flight locks for one process (embedded mode), with the same lease rules as the Redis ones. */
export class MemoryFlightLock implements FlightLock {
  private readonly held = new Map<string, Held>();
  private readonly signals = new FlightSignals();
  private readonly pollMs: number;
  private closed = false;

  constructor(
    private readonly deps: { namespace: CacheNamespace },
    opts: MemoryFlightLockOptions = {},
  ) {
    this.pollMs = opts.pollMs ?? 50;
  }

  async acquire(key: string, leaseMs: number): Promise<FlightAttempt> {
    this.deps.namespace.assertAnswerKey(key);
    checkPositiveInteger('leaseMs', leaseMs);
    if (this.closed) return 'unavailable';
    if (this.heldNow(key)) return 'busy';
    const token = randomUUID();
    this.held.set(key, { token, expiresAt: Date.now() + leaseMs });
    return this.lease(key, token);
  }

  async adopt(key: string, token: string, leaseMs: number): Promise<FlightLease | undefined> {
    this.deps.namespace.assertAnswerKey(key);
    checkPositiveInteger('leaseMs', leaseMs);
    if (this.closed || !this.ownedBy(key, token)) return undefined;
    this.held.set(key, { token, expiresAt: Date.now() + leaseMs });
    return this.lease(key, token);
  }

  async release(key: string, token: string): Promise<void> {
    if (!this.ownedBy(key, token)) return;
    this.held.delete(key);
    this.signals.notify(key);
  }

  waitForRelease(key: string, opts: WaitOptions): Promise<WaitOutcome> {
    this.deps.namespace.assertAnswerKey(key);
    const isHeld = async () => (this.closed ? null : this.heldNow(key));
    return awaitRelease(this.signals.watch(key), isHeld, { signal: opts.signal, timeoutMs: opts.timeoutMs, pollMs: this.pollMs });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.signals.notifyAll();
  }

  async isHeld(key: string): Promise<boolean> {
    return !this.closed && this.heldNow(key);
  }

  private heldNow(key: string): boolean {
    const lock = this.held.get(key);
    if (lock && lock.expiresAt <= Date.now()) this.held.delete(key);
    return this.held.has(key);
  }

  private ownedBy(key: string, token: string): boolean {
    return this.heldNow(key) && this.held.get(key)?.token === token;
  }

  private lease(key: string, token: string): FlightLease {
    return {
      key,
      token,
      release: () => this.release(key, token),
      extend: async (leaseMs) => {
        checkPositiveInteger('leaseMs', leaseMs);
        if (!this.ownedBy(key, token)) return false;
        this.held.set(key, { token, expiresAt: Date.now() + leaseMs });
        return true;
      },
    };
  }
}
