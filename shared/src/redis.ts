import { Redis, type RedisOptions } from 'ioredis';

export type { Redis } from 'ioredis';

export interface RedisClientOptions {
  url: string;
  /** Connection name shown by `CLIENT LIST`. */
  name: string;
  /** A command that has no answer by then fails. Default 50 ms: the cache fails open, it never waits. */
  commandTimeoutMs?: number;
  /** Give up a connection attempt after this long. Default 500 ms. */
  connectTimeoutMs?: number;
  /** Longest wait between reconnect attempts. Default 1 s. */
  maxReconnectDelayMs?: number;
}

/**
 * The house Redis client: no offline queue (a command while disconnected fails at once instead of
 * piling up), a command timeout, no per-command retries, and reconnection forever with a capped backoff.
 * One client serves a whole process: ioredis pipelines commands on a single connection.
 */
export function createRedisClient(opts: RedisClientOptions): Redis {
  const maxDelay = opts.maxReconnectDelayMs ?? 1000;
  const options: RedisOptions = {
    connectionName: opts.name,
    enableOfflineQueue: false,
    commandTimeout: opts.commandTimeoutMs ?? 50,
    connectTimeout: opts.connectTimeoutMs ?? 500,
    maxRetriesPerRequest: 0,
    enableReadyCheck: true,
    lazyConnect: false,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 10), maxDelay),
    reconnectOnError: () => false,
  };
  const client = new Redis(opts.url, options);
  // Errors are reported through status and the callers' fail-open paths; without a listener ioredis logs them.
  client.on('error', () => {});
  return client;
}
