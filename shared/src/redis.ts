import { Redis, type Command, type RedisOptions } from 'ioredis';

export type { Redis } from 'ioredis';

export interface RedisClientOptions {
  url: string;
  /** Connection name shown by `CLIENT LIST`. */
  name: string;
  /**
   * A command that Redis has not answered by then fails. Default 50 ms: the cache fails open, it never waits.
   * This process's own lag does not count (see `LagTolerantRedis`).
   */
  commandTimeoutMs?: number;
  /** Give up a connection attempt after this long. Default 500 ms. */
  connectTimeoutMs?: number;
  /** Longest wait between reconnect attempts. Default 1 s. */
  maxReconnectDelayMs?: number;
}

/**
 * ioredis with a command timeout that measures Redis, not this process. ioredis' own `commandTimeout` fails a
 * command from its timer; when the event loop was busy past the deadline (a burst of requests on a cold process),
 * the timers run before the loop reads the sockets, and a command whose answer already sits in the socket fails
 * anyway, and the cache fails open for nothing. Here a timer that fires lets the loop read its sockets once (one
 * `setImmediate`) before the command fails.
 */
class LagTolerantRedis extends Redis {
  constructor(
    url: string,
    options: RedisOptions,
    private readonly timeoutMs: number,
  ) {
    // Connecting is asynchronous: no command is sent before this constructor returns.
    super(url, options);
  }

  override sendCommand(command: Command, stream?: Parameters<Redis['sendCommand']>[1]): unknown {
    const result = super.sendCommand(command, stream);
    if (this.timeoutMs > 0 && !command.isResolved) {
      const fail = (): void => {
        if (!command.isResolved) command.reject(new Error('Command timed out'));
      };
      const timer = setTimeout(() => setImmediate(fail), this.timeoutMs);
      const clear = (): void => clearTimeout(timer);
      command.promise.then(clear, clear);
    }
    return result;
  }
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
    connectTimeout: opts.connectTimeoutMs ?? 500,
    maxRetriesPerRequest: 0,
    enableReadyCheck: true,
    lazyConnect: false,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 10), maxDelay),
    reconnectOnError: () => false,
  };
  const client = new LagTolerantRedis(opts.url, options, opts.commandTimeoutMs ?? 50);
  // Errors are reported through status and the callers' fail-open paths; without a listener ioredis logs them.
  client.on('error', () => {});
  return client;
}
