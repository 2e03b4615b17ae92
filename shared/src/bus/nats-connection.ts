import type { NatsConnection } from '@nats-io/transport-node';
import type { Bus } from './bus.js';
import { DeferredBus } from './deferred-bus.js';
import { NatsBus } from './nats-bus.js';

/**
 * The NATS connection under a bus, once it is connected (a deferred bus waits for it); undefined for the
 * in-process bus. For what only NATS offers (JetStream).
 */
export async function natsConnectionOf(bus: Bus): Promise<NatsConnection | undefined> {
  const real = bus instanceof DeferredBus ? await bus.whenConnected() : bus;
  return real instanceof NatsBus ? real.connection : undefined;
}
