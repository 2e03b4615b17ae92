import type { Bus } from './bus.js';
import { InProcessBus } from './in-process-bus.js';
import { NatsBus } from './nats-bus.js';
import { DeferredBus } from './deferred-bus.js';

export interface BusConfig {
  /** NATS server; without it the bus is in-process (embedded mode). */
  natsUrl?: string | undefined;
  name: string;
  onHandlerError?: (err: unknown, subject: string) => void;
}

/** The one place that picks a bus implementation. */
export async function createBus(cfg: BusConfig): Promise<Bus> {
  if (!cfg.natsUrl) return new InProcessBus(cfg.onHandlerError);
  return NatsBus.connect({ url: cfg.natsUrl, name: cfg.name, ...(cfg.onHandlerError ? { onHandlerError: cfg.onHandlerError } : {}) });
}

/**
 * The bus at once, its connection in the background: a service listens and answers health checks (not
 * ready) while NATS is still unreachable, instead of waiting to start.
 */
export function createBusInBackground(cfg: BusConfig & { onConnectError?: (err: unknown) => void }): Bus {
  if (!cfg.natsUrl) return new InProcessBus(cfg.onHandlerError);
  return new DeferredBus('nats', createBus(cfg), cfg.onConnectError);
}
