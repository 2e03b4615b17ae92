import { describe, expect, it } from 'vitest';
import { encodeJson } from '../contracts/codec.js';
import { BusClosedError, type Bus, type BusMessage, type BusState } from './bus.js';
import { DeferredBus } from './deferred-bus.js';
import { InProcessBus } from './in-process-bus.js';

describe('DeferredBus', () => {
  it('is not connected, refuses to publish and keeps subscriptions until the real bus arrives', async () => {
    let connect!: (b: Bus) => void;
    const bus = new DeferredBus('nats', new Promise<Bus>((r) => (connect = r)));
    const states: BusState[] = [];
    bus.onStateChange((s) => states.push(s));
    expect(bus.state()).toBe('reconnecting');
    expect(() => bus.publish('a.b', encodeJson(1))).toThrow(BusClosedError);
    await expect(bus.request('a.b', encodeJson(1), { timeoutMs: 100 })).rejects.toBeInstanceOf(BusClosedError);

    const got: BusMessage[] = [];
    bus.subscribe('a.b', (m) => got.push(m));
    const dropped: BusMessage[] = [];
    bus.subscribe('a.c', (m) => dropped.push(m)).unsubscribe();

    const real = new InProcessBus();
    connect(real);
    await new Promise((r) => setImmediate(r));
    expect(bus.connected).toBe(true);
    expect(bus.state()).toBe('connected');
    expect(states).toEqual(['connected']);
    bus.publish('a.b', encodeJson(1));
    real.publish('a.c', encodeJson(2));
    await real.flush();
    expect(got).toHaveLength(1);
    expect(dropped).toHaveLength(0);
    await bus.close();
    expect(bus.state()).toBe('closed');
  });
});
