export type BreakerState = 'closed' | 'open' | 'half_open';

/** Open the circuit when the share of failed calls in a sliding window passes a threshold. */
export interface ErrorRateRule {
  /** Share of failed calls (0..1] that opens the circuit. */
  threshold: number;
  /** Length of the sliding window. */
  windowMs: number;
  /** Calls the window must hold before the rate counts: two failures out of three are no outage. */
  minCalls: number;
}

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit. Default 5. */
  failureThreshold?: number;
  /** Also open when the error rate over a window passes a threshold. Default: off. */
  errorRate?: ErrorRateRule;
  /** How long the circuit stays open before trial calls go through. Default 1000 ms. */
  cooldownMs?: number;
  /** Trial calls let through at once in the half-open state; as many successes close the circuit. Default 1. */
  halfOpenProbes?: number;
  /** Clock in ms. Default `Date.now`. */
  now?: () => number;
  /** Told of each change of state, e.g. to log it or set a gauge. */
  onStateChange?: (state: BreakerState) => void;
}

/** Buckets of the error-rate window: the window slides by a tenth of its length. */
const WINDOW_BUCKETS = 10;

/**
 * Stops calling a dependency that keeps failing: closed → open after `failureThreshold` failures in a row (or
 * an error rate over a window) → half open after `cooldownMs`, letting `halfOpenProbes` trial calls through →
 * closed once as many succeed, open again on any failure. While open, callers skip the dependency at once
 * instead of waiting for timeouts.
 *
 * The state lives in this process: each replica learns from its own calls (see docs/resilience.md).
 */
export class CircuitBreaker {
  private readonly failureThreshold: number;
  private readonly cooldownMs: number;
  private readonly probes: number;
  private readonly now: () => number;
  private readonly onStateChange: ((state: BreakerState) => void) | undefined;
  private readonly window: SlidingCounts | undefined;
  private readonly rule: ErrorRateRule | undefined;
  private current: BreakerState = 'closed';
  private failures = 0;
  private openedAt = 0;
  /** Trial calls out in the half-open state, when the last one started, and how many succeeded. */
  private trialsOut = 0;
  private lastTrialAt = 0;
  private trialSuccesses = 0;

  constructor(opts: CircuitBreakerOptions = {}) {
    this.failureThreshold = opts.failureThreshold ?? 5;
    this.cooldownMs = opts.cooldownMs ?? 1000;
    this.probes = Math.max(1, opts.halfOpenProbes ?? 1);
    this.now = opts.now ?? Date.now;
    this.onStateChange = opts.onStateChange;
    this.rule = opts.errorRate;
    this.window = opts.errorRate ? new SlidingCounts(opts.errorRate.windowMs, this.now) : undefined;
  }

  /** The state as callers see it: an open circuit whose cool-down has passed is half open. */
  state(): BreakerState {
    if (this.current === 'open' && this.now() - this.openedAt >= this.cooldownMs) return 'half_open';
    return this.current;
  }

  /** Whether a call may go ahead now. In the half-open state only `halfOpenProbes` trial calls are out at a time. */
  allow(): boolean {
    const state = this.state();
    if (state === 'closed') return true;
    if (state === 'open') return false;
    // Trials that never reported back (they should always settle) must not keep the circuit shut for good.
    if (this.trialsOut > 0 && this.now() - this.lastTrialAt >= this.cooldownMs) this.trialsOut = 0;
    if (this.current !== 'half_open') {
      this.trialSuccesses = 0;
      this.trialsOut = 0;
    }
    if (this.trialsOut >= this.probes) return false;
    this.trialsOut += 1;
    this.lastTrialAt = this.now();
    this.moveTo('half_open');
    return true;
  }

  success(): void {
    this.failures = 0;
    this.window?.add(false);
    if (this.current === 'half_open') {
      this.trialsOut = Math.max(0, this.trialsOut - 1);
      if (++this.trialSuccesses < this.probes) return;
    }
    this.trialsOut = 0;
    this.moveTo('closed');
  }

  failure(): void {
    this.failures += 1;
    this.window?.add(true);
    if (this.current === 'half_open' || this.failures >= this.failureThreshold || this.rateExceeded()) this.open();
  }

  /** A call that ended without telling anything about the dependency (aborted by its caller). */
  release(): void {
    if (this.current === 'half_open') this.trialsOut = Math.max(0, this.trialsOut - 1);
  }

  private rateExceeded(): boolean {
    if (!this.window || !this.rule) return false;
    const { calls, failed } = this.window.totals();
    return calls >= this.rule.minCalls && failed / calls >= this.rule.threshold;
  }

  private open(): void {
    this.openedAt = this.now();
    this.trialsOut = 0;
    this.trialSuccesses = 0;
    this.window?.clear();
    // Re-opening from half open is a change of state too: observers see every failed trial.
    if (this.current === 'open') return;
    this.current = 'open';
    this.onStateChange?.('open');
  }

  private moveTo(state: BreakerState): void {
    if (this.current === state) return;
    this.current = state;
    this.onStateChange?.(state);
  }
}

/** Calls and failures over the last `windowMs`, in buckets so that old calls fall out without a list of them. */
class SlidingCounts {
  private readonly bucketMs: number;
  private readonly calls = new Array<number>(WINDOW_BUCKETS).fill(0);
  private readonly failed = new Array<number>(WINDOW_BUCKETS).fill(0);
  private readonly stamps = new Array<number>(WINDOW_BUCKETS).fill(-1);

  constructor(
    windowMs: number,
    private readonly now: () => number,
  ) {
    this.bucketMs = Math.max(1, Math.ceil(windowMs / WINDOW_BUCKETS));
  }

  add(failure: boolean): void {
    const slot = Math.floor(this.now() / this.bucketMs);
    const i = slot % WINDOW_BUCKETS;
    if (this.stamps[i] !== slot) {
      this.stamps[i] = slot;
      this.calls[i] = 0;
      this.failed[i] = 0;
    }
    this.calls[i]! += 1;
    if (failure) this.failed[i]! += 1;
  }

  totals(): { calls: number; failed: number } {
    const oldest = Math.floor(this.now() / this.bucketMs) - WINDOW_BUCKETS + 1;
    let calls = 0;
    let failed = 0;
    for (let i = 0; i < WINDOW_BUCKETS; i++) {
      if (this.stamps[i]! < oldest) continue;
      calls += this.calls[i]!;
      failed += this.failed[i]!;
    }
    return { calls, failed };
  }

  clear(): void {
    this.stamps.fill(-1);
  }
}
