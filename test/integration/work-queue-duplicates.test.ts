import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { createLogger, JetStreamWorkQueue, MemoryWorkQueue, type WorkQueue, type WorkQueueLimits } from '@actionedx/shared';
import { startNats } from '@actionedx/testkit';

const limits: WorkQueueLimits = { maxJobs: 10, maxPerUser: 10, ackWaitMs: 5_000, maxDeliver: 3, replicas: 1, maxAgeMs: 60_000 };
const logger = createLogger({ service: 'test', version: 'test', level: 'silent' });
const bytes = (s: string) => new TextEncoder().encode(s);

/** The lookup lane gives a flight reservation back when the gateway queued the attempt first: it reads `duplicate`. */
describe('work queue: a second job with the same message id is reported as a duplicate (JetStream, and memory)', () => {
  let nats: Awaited<ReturnType<typeof startNats>>;
  let nc: NatsConnection;
  const queues: Record<string, () => WorkQueue> = {
    jetstream: () => new JetStreamWorkQueue(Promise.resolve(nc), { limits, storage: 'memory', logger }),
    memory: () => new MemoryWorkQueue(limits),
  };
  beforeAll(async () => {
    nats = await startNats();
    nc = await connect({ servers: nats.url });
  }, 20_000);
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  for (const [kind, make] of Object.entries(queues)) {
    it(`${kind}: the first is queued, the repeat is a duplicate and not queued again; its data stays the first one's`, async () => {
      const queue = make();
      await queue.ready();
      const msgId = `${randomUUID()}.0`;
      expect(await queue.enqueue('shard-a', bytes('the gateway copy'), { msgId })).toEqual({ duplicate: false });
      expect(await queue.enqueue('shard-a', bytes('the lookup lane copy'), { msgId })).toEqual({ duplicate: true });
      expect(await queue.enqueue('shard-a', bytes('another attempt'), { msgId: msgId.replace(/\.0$/, '.1') })).toEqual({ duplicate: false });
      const signal = new AbortController().signal;
      const first = await queue.pull(signal, 2_000);
      expect(new TextDecoder().decode(first!.data)).toBe('the gateway copy');
      await first!.ack();
      const second = await queue.pull(signal, 2_000);
      expect(new TextDecoder().decode(second!.data)).toBe('another attempt');
      await second!.ack();
      expect(await queue.pull(signal, 300)).toBeNull();
    });
  }
});
