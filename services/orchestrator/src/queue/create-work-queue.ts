import { natsConnectionOf, type Bus, type Logger } from '@actionedx/shared';
import { JetStreamWorkQueue } from './jetstream-work-queue.js';
import { MemoryWorkQueue } from './memory-work-queue.js';
import type { WorkQueue, WorkQueueLimits } from './work-queue.js';

export interface WorkQueueConfig {
  limits: WorkQueueLimits;
  storage: 'memory' | 'file';
  logger: Logger;
}

/** The one place that picks a work queue: JetStream on a NATS bus, in memory on the in-process bus. */
export function createWorkQueue(bus: Bus, cfg: WorkQueueConfig): WorkQueue {
  if (bus.kind === 'in-process') return new MemoryWorkQueue(cfg.limits);
  const connection = natsConnectionOf(bus).then((nc) => {
    if (!nc) throw new Error('a NATS bus without a NATS connection');
    return nc;
  });
  connection.catch(() => {});
  return new JetStreamWorkQueue(connection, { limits: cfg.limits, storage: cfg.storage, logger: cfg.logger });
}
