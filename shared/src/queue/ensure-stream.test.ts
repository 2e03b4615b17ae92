import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { ensureStream } from './ensure-stream.js';

/** The machine's NATS with JetStream (the integration project's global setup makes sure one answers). */
const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

describe('ensureStream on a real JetStream', () => {
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  const name = `ENSURE_${randomUUID().replaceAll('-', '').slice(0, 12).toUpperCase()}`;

  beforeAll(async () => {
    nc = await connect({ servers: NATS_URL });
    jsm = await jetstreamManager(nc);
  });
  afterAll(async () => {
    await jsm.streams.delete(name).catch(() => undefined);
    await nc.close();
  });

  it('creates a stream, then brings it to a new configuration instead of failing on its name', async () => {
    const base = { name, subjects: [`ensure.${name}.>`], max_age: nanos(60_000), max_msgs: 100 };
    expect(await ensureStream(jsm, base)).toBe('created');
    expect(await ensureStream(jsm, base)).toBe('created'); // the same configuration again: nothing to change
    expect(await ensureStream(jsm, { ...base, max_msgs: 500 })).toBe('updated');
    expect((await jsm.streams.info(name)).config.max_msgs).toBe(500);
  });

  it('throws what is not a name clash', async () => {
    await expect(ensureStream(jsm, { name: 'bad name with spaces', subjects: ['x.y'] })).rejects.toThrow();
  });
});
