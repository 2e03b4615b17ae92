export type BreakerState = 'closed' | 'open' | 'half_open';

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit. Default 5. */
  failureThreshold?: number;
  /** How long the circuit stays open before one trial call goes through. Default 1000 ms. */
  cooldownMs?: number;
  /** Clock in ms. Default `Date.now`. */
  now?: () => number;
  /** Told of each change of state, e.g. to log it. */
  onStateChange?: (state: BreakerState) => void;
}

/**
 * Stops calling a dependency that keeps failing: closed → open after `failureThreshold` failures in a row
 * → half open after `cooldownMs`, letting one trial call through → closed on its success, open again on
 * its failure. While open, callers skip the dependency at once instead of waiting for timeouts.
 */
export class CircuitBreaker {
  private readonly failureThreshold: number;
  private readonly cooldownMs: number;
  private readonly now: () => number;
  private readonly onStateChange: ((state: BreakerState) => void) | undefined;
  private current: BreakerState = 'closed';
  private failures = 0;
  private openedAt = 0;
  /** When the trial call of the half-open state started; undefined when none is out. */
  private trialStartedAt: number | undefined;

  constructor(opts: CircuitBreakerOptions = {}) {
    this.failureThreshold = opts.failureThreshold ?? 5;
    this.cooldownMs = opts.cooldownMs ?? 1000;
    this.now = opts.now ?? Date.now;
    this.onStateChange = opts.onStateChange;
  }

  /** The state as callers see it: an open circuit whose cool-down has passed is half open. */
  state(): BreakerState {
    if (this.current === 'open' && this.now() - this.openedAt >= this.cooldownMs) return 'half_open';
    return this.current;
  }

  /** Whether a call may go ahead now. In the half-open state only one trial call is out at a time. */
  allow(): boolean {
    const state = this.state();
    if (state === 'closed') return true;
    if (state === 'open') return false;
    // A trial that never reported back (it should always settle) must not keep the circuit shut for good.
    if (this.trialStartedAt !== undefined && this.now() - this.trialStartedAt < this.cooldownMs) return false;
    this.trialStartedAt = this.now();
    this.moveTo('half_open');
    return true;
  }

  success(): void {
    this.failures = 0;
    this.trialStartedAt = undefined;
    this.moveTo('closed');
  }

  failure(): void {
    this.failures += 1;
    const trialFailed = this.trialStartedAt !== undefined;
    this.trialStartedAt = undefined;
    if (trialFailed || this.failures >= this.failureThreshold) {
      this.openedAt = this.now();
      this.moveTo('open');
    }
  }

  private moveTo(state: BreakerState): void {
    if (this.current === state) return;
    this.current = state;
    this.onStateChange?.(state);
  }
}
