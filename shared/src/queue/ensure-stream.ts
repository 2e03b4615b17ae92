import { JetStreamApiError, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';

/** "stream name already in use with a different configuration". */
const STREAM_NAME_IN_USE = 10058;

/**
 * Creates the stream, or brings an existing one to this configuration (its bounds changed with a deploy):
 * `created` or `updated`. Other errors are thrown.
 */
export async function ensureStream(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string }): Promise<'created' | 'updated'> {
  try {
    await jsm.streams.add(config);
    return 'created';
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === STREAM_NAME_IN_USE)) throw err;
    const { name, ...update } = config;
    await jsm.streams.update(name, update);
    return 'updated';
  }
}
