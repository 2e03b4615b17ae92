import type { Bus } from '../bus/bus.js';
import { natsConnectionOf } from '../bus/nats-connection.js';
import type { Logger } from '../logger.js';
import { JetStreamWorkQueue } from './jetstream-work-queue.js';
import { MemoryWorkQueue } from './memory-work-queue.js';
import type { WorkQueue, WorkQueueLimits } from './work-queue.js';

export interface WorkQueueConfig {
  limits: WorkQueueLimits;
  storage: 'memory' | 'file';
  logger: Logger;
  /** Create and update the stream and consumer (orchestrators). Default true. */
  manage?: boolean;
}

/** The one place that picks a work queue: JetStream on a NATS bus, in memory on the in-process bus. */
export function createWorkQueue(bus: Bus, cfg: WorkQueueConfig): WorkQueue {
  if (bus.kind === 'in-process') return new MemoryWorkQueue(cfg.limits);
  const connection = natsConnectionOf(bus).then((nc) => {
    if (!nc) throw new Error('a NATS bus without a NATS connection');
    return nc;
  });
  connection.catch(() => {});
  return new JetStreamWorkQueue(connection, { limits: cfg.limits, storage: cfg.storage, logger: cfg.logger, ...(cfg.manage === undefined ? {} : { manage: cfg.manage }) });
}
