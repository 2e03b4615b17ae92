import {
  BusClosedError,
  type Bus,
  type BusHandler,
  type BusMessage,
  type BusState,
  type BusSubscription,
  type PublishOptions,
  type RequestOptions,
} from './bus.js';

interface PendingSub {
  subject: string;
  handler: BusHandler;
  opts: { queue?: string } | undefined;
  real: BusSubscription | undefined;
  cancelled: boolean;
}

/**
 * A bus that exists before its connection does, so a service can serve health and readiness while the
 * server is still unreachable. Until connected it reports `reconnecting`, refuses to publish (the callers
 * answer "bus unavailable"), and keeps subscriptions to make once the real bus is there.
 */
export class DeferredBus implements Bus {
  private real: Bus | undefined;
  private readonly subs = new Set<PendingSub>();
  private readonly listeners = new Set<(s: BusState) => void>();
  private closed = false;
  private readonly realBus: Promise<Bus>;

  constructor(
    readonly kind: Bus['kind'],
    connecting: Promise<Bus>,
    onConnectError: (err: unknown) => void = () => {},
  ) {
    this.realBus = connecting;
    connecting.then(
      (bus) => this.attach(bus),
      (err: unknown) => onConnectError(err),
    );
    connecting.catch(() => {});
  }

  /** The real bus, once connected (rejects if it never connects). */
  whenConnected(): Promise<Bus> {
    return this.realBus;
  }

  /** Whether the real bus has connected once. */
  get connected(): boolean {
    return this.real !== undefined;
  }

  publish(subject: string, data: Uint8Array, opts?: PublishOptions): void {
    if (!this.real) throw new BusClosedError();
    this.real.publish(subject, data, opts);
  }

  subscribe(subject: string, handler: BusHandler, opts?: { queue?: string }): BusSubscription {
    if (this.closed) throw new BusClosedError();
    const sub: PendingSub = { subject, handler, opts, real: undefined, cancelled: false };
    if (this.real) sub.real = this.real.subscribe(subject, handler, opts);
    else this.subs.add(sub);
    return {
      unsubscribe: () => {
        sub.cancelled = true;
        this.subs.delete(sub);
        sub.real?.unsubscribe();
      },
    };
  }

  request(subject: string, data: Uint8Array, opts: RequestOptions): Promise<BusMessage> {
    if (!this.real) return Promise.reject(new BusClosedError());
    return this.real.request(subject, data, opts);
  }

  async flush(): Promise<void> {
    await this.real?.flush();
  }

  state(): BusState {
    if (this.closed) return 'closed';
    return this.real ? this.real.state() : 'reconnecting';
  }

  onStateChange(listener: (state: BusState) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.subs.clear();
    await this.real?.close();
    for (const l of this.listeners) l('closed');
  }

  private attach(bus: Bus): void {
    if (this.closed) {
      void bus.close();
      return;
    }
    this.real = bus;
    for (const sub of this.subs) if (!sub.cancelled) sub.real = bus.subscribe(sub.subject, sub.handler, sub.opts);
    this.subs.clear();
    bus.onStateChange((s) => {
      for (const l of this.listeners) l(s);
    });
    for (const l of this.listeners) l(bus.state());
  }
}
