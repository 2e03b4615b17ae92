import type { Bus } from './bus.js';
import { InProcessBus } from './in-process-bus.js';
import { NatsBus } from './nats-bus.js';

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
