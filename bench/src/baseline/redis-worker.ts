/**
 * Baseline, back half: takes NATS requests in a queue group and answers each with one Redis GET.
 * Env: NATS_URL, REDIS_URL, KEY, SUBJECT.
 */
import { connect } from '@nats-io/transport-node';
import { Redis } from 'ioredis';

const redis = new Redis(process.env.REDIS_URL!, { connectionName: 'bench-baseline-worker' });
const key = process.env.KEY!;
const nc = await connect({ servers: process.env.NATS_URL!, name: 'bench-baseline-worker' });
nc.subscribe(process.env.SUBJECT ?? 'bench.baseline.get', {
  queue: 'bench-workers',
  callback: (err, m) => {
    if (err) return;
    redis.getBuffer(key).then(
      (v) => m.respond(v ?? new Uint8Array()),
      () => m.respond(new Uint8Array()),
    );
  },
});
await nc.flush();
await redis.ping();
process.send!({ ready: true });
process.on('SIGTERM', () => {
  redis.disconnect();
  void nc.close().finally(() => process.exit(0));
});
process.on('disconnect', () => process.exit(0));
