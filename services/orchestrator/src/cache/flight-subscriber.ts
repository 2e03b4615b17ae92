import type { Logger, Redis } from '@actionedx/shared';
import type { CacheNamespace } from './cache-namespace.js';
import type { FlightSignals } from './flight-signals.js';

/**
 * The pub/sub side of single flight: one extra connection per cache, opened the first time a worker waits,
 * listening to `<prefix>:flight:*` and ringing the local waiters of the key a leader released. While it is
 * down the waiters still poll, so it only makes waiting faster.
 */
export class FlightSubscriber {
  private connection: Redis | undefined;

  constructor(
    private readonly source: Redis,
    private readonly namespace: CacheNamespace,
    private readonly signals: FlightSignals,
    private readonly logger: Logger,
  ) {}

  /** Opens the connection unless it is open already; returns at once, subscribing in the background. */
  ensureStarted(): void {
    if (this.connection) return;
    const conn = this.source.duplicate({
      connectionName: `${this.source.options.connectionName ?? 'cache'}:flight`,
      // We subscribe again on every 'ready' ourselves: ioredis only restores subscriptions that succeeded.
      autoResubscribe: false,
      // PSUBSCRIBE is the only command here and nothing waits on it, so a slow answer is no reason to fail it.
      commandTimeout: 2_000,
    });
    conn.on('error', () => {});
    conn.on('ready', () => {
      conn.psubscribe(this.namespace.flightPattern).catch((err: unknown) => {
        this.logger.debug({ err }, 'cache flight subscription failed; waiters poll until the next reconnect');
      });
    });
    conn.on('pmessage', (_pattern: string, channel: string) => {
      const key = this.namespace.keyOfFlightChannel(channel);
      if (key !== undefined) this.signals.notify(key);
    });
    this.connection = conn;
  }

  close(): void {
    this.connection?.disconnect();
    this.connection = undefined;
  }
}
