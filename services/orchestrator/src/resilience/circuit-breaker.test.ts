import { describe, expect, it } from 'vitest';
import { CircuitBreaker, type BreakerState } from './circuit-breaker.js';

function breaker() {
  let now = 0;
  const changes: BreakerState[] = [];
  const b = new CircuitBreaker({ failureThreshold: 3, cooldownMs: 1000, now: () => now, onStateChange: (s) => changes.push(s) });
  return { b, changes, advance: (ms: number) => void (now += ms) };
}

describe('CircuitBreaker', () => {
  it('opens after the threshold of failures in a row, not before', () => {
    const { b } = breaker();
    b.failure();
    b.failure();
    b.success();
    b.failure();
    b.failure();
    expect(b.state()).toBe('closed');
    b.failure();
    expect(b.state()).toBe('open');
    expect(b.allow()).toBe(false);
  });

  it('lets one trial through after the cool-down and closes on its success', () => {
    const { b, changes, advance } = breaker();
    for (let i = 0; i < 3; i++) b.failure();
    advance(999);
    expect(b.allow()).toBe(false);
    advance(1);
    expect(b.state()).toBe('half_open');
    expect(b.allow()).toBe(true);
    expect(b.allow()).toBe(false);
    b.success();
    expect(b.state()).toBe('closed');
    expect(b.allow()).toBe(true);
    expect(changes).toEqual(['open', 'half_open', 'closed']);
  });

  it('opens again when the trial fails, for a whole new cool-down', () => {
    const { b, advance } = breaker();
    for (let i = 0; i < 3; i++) b.failure();
    advance(1000);
    expect(b.allow()).toBe(true);
    b.failure();
    expect(b.state()).toBe('open');
    advance(999);
    expect(b.allow()).toBe(false);
    advance(1);
    expect(b.allow()).toBe(true);
  });

  it('does not stay shut when a trial never reports back', () => {
    const { b, advance } = breaker();
    for (let i = 0; i < 3; i++) b.failure();
    advance(1000);
    expect(b.allow()).toBe(true);
    advance(999);
    expect(b.allow()).toBe(false);
    advance(1);
    expect(b.allow()).toBe(true);
  });
});

describe('CircuitBreaker with an error-rate rule and several probes', () => {
  function rated() {
    let now = 0;
    const b = new CircuitBreaker({
      failureThreshold: 100,
      errorRate: { threshold: 0.5, windowMs: 10_000, minCalls: 6 },
      cooldownMs: 1000,
      halfOpenProbes: 2,
      now: () => now,
    });
    return { b, advance: (ms: number) => void (now += ms) };
  }

  it('opens when half of the calls in the window failed, once the window holds enough calls', () => {
    const { b } = rated();
    b.failure();
    b.success();
    b.failure();
    b.success();
    b.failure();
    expect(b.state()).toBe('closed'); // 5 calls: below minCalls
    b.failure();
    expect(b.state()).toBe('open'); // 4 of 6 failed
  });

  it('forgets failures that left the window', () => {
    const { b, advance } = rated();
    for (let i = 0; i < 5; i++) b.failure();
    advance(11_000);
    b.failure();
    expect(b.state()).toBe('closed'); // the window holds 1 call, not 6
  });

  it('lets two probes through and closes only after both succeed', () => {
    const { b, advance } = rated();
    for (let i = 0; i < 6; i++) b.failure();
    advance(1000);
    expect(b.allow()).toBe(true);
    expect(b.allow()).toBe(true);
    expect(b.allow()).toBe(false);
    b.success();
    expect(b.state()).toBe('half_open');
    b.success();
    expect(b.state()).toBe('closed');
  });

  it('gives a probe slot back when its call was abandoned', () => {
    const { b, advance } = rated();
    for (let i = 0; i < 6; i++) b.failure();
    advance(1000);
    expect(b.allow()).toBe(true);
    expect(b.allow()).toBe(true);
    b.release();
    expect(b.allow()).toBe(true);
  });
});
