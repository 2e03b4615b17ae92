import {
  connect,
  headers as natsHeaders,
  RequestError,
  TimeoutError,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
} from '@nats-io/transport-node';
import {
  BusClosedError,
  BusNoRespondersError,
  BusTimeoutError,
  type Bus,
  type BusHandler,
  type BusHeaders,
  type BusMessage,
  type BusState,
  type BusSubscription,
  type PublishOptions,
  type RequestOptions,
} from './bus.js';

export interface NatsBusOptions {
  /** One server, or several separated by commas (a cluster; the client fails over between them). */
  url: string;
  /** Connection name shown by the server (`nats-server` monitoring, logs). */
  name: string;
  /** Wait between reconnect attempts. Default 250 ms. */
  reconnectTimeWaitMs?: number;
  /** A handler that throws is reported here and the bus goes on. */
  onHandlerError?: (err: unknown, subject: string) => void;
}

function toNatsHeaders(h: BusHeaders | undefined): MsgHdrs | undefined {
  if (!h) return undefined;
  const keys = Object.keys(h);
  if (keys.length === 0) return undefined;
  const out = natsHeaders();
  for (const k of keys) out.set(k, h[k]!);
  return out;
}

/** A received message; its headers are decoded only when read (frames rarely need them). */
class NatsBusMessage implements BusMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly reply?: string;
  readonly noResponders?: boolean;
  private decoded: BusHeaders | undefined;

  constructor(private readonly m: Msg) {
    this.subject = m.subject;
    this.data = m.data;
    if (m.reply) this.reply = m.reply;
    // Only a status message is empty: reading `headers` makes nats.js decode them, so frames skip it.
    if (m.data.length === 0 && m.headers?.hasError && m.headers.code === 503) this.noResponders = true;
  }

  get headers(): BusHeaders {
    if (this.decoded === undefined) {
      const headers: BusHeaders = {};
      if (this.m.headers) for (const k of this.m.headers.keys()) headers[k.toLowerCase()] = this.m.headers.get(k);
      this.decoded = headers;
    }
    return this.decoded;
  }
}

const fromNatsMsg = (m: Msg): BusMessage => new NatsBusMessage(m);

/** The bus over core NATS. Reconnects forever; `state()` says when it is not connected. */
export class NatsBus implements Bus {
  readonly kind = 'nats';
  private current: BusState = 'connected';
  private readonly listeners = new Set<(s: BusState) => void>();

  private constructor(
    private readonly nc: NatsConnection,
    private readonly onHandlerError: (err: unknown, subject: string) => void,
  ) {
    void this.watch();
  }

  static async connect(opts: NatsBusOptions): Promise<NatsBus> {
    const nc = await connect({
      servers: opts.url.split(',').map((u) => u.trim()).filter((u) => u.length > 0),
      name: opts.name,
      // nats.js stops after 10 attempts by default; a service must never give up on its bus.
      maxReconnectAttempts: -1,
      reconnectTimeWait: opts.reconnectTimeWaitMs ?? 250,
      waitOnFirstConnect: true,
      pingInterval: 10_000,
      maxPingOut: 3,
      // Async stack traces build an Error per request: measurable on the hot path, rarely read.
      noAsyncTraces: true,
    });
    return new NatsBus(
      nc,
      opts.onHandlerError ?? ((err, subject) => console.error(`bus handler for ${subject} threw`, err)),
    );
  }

  /** The NATS connection underneath, for what only NATS has (JetStream). */
  get connection(): NatsConnection {
    return this.nc;
  }

  publish(subject: string, data: Uint8Array, opts?: PublishOptions): void {
    if (this.current === 'closed') throw new BusClosedError();
    const h = toNatsHeaders(opts?.headers);
    this.nc.publish(subject, data, h || opts?.reply ? { ...(h ? { headers: h } : {}), ...(opts?.reply ? { reply: opts.reply } : {}) } : undefined);
  }

  subscribe(subject: string, handler: BusHandler, opts?: { queue?: string }): BusSubscription {
    if (this.current === 'closed') throw new BusClosedError();
    const sub = this.nc.subscribe(subject, {
      ...(opts?.queue ? { queue: opts.queue } : {}),
      callback: (err, m) => {
        if (err) return this.onHandlerError(err, subject);
        try {
          handler(fromNatsMsg(m));
        } catch (e) {
          this.onHandlerError(e, m.subject);
        }
      },
    });
    return { unsubscribe: () => sub.unsubscribe() };
  }

  async request(subject: string, data: Uint8Array, opts: RequestOptions): Promise<BusMessage> {
    if (this.current === 'closed') throw new BusClosedError();
    const h = toNatsHeaders(opts.headers);
    try {
      const m = await this.nc.request(subject, data, { timeout: opts.timeoutMs, ...(h ? { headers: h } : {}) });
      return fromNatsMsg(m);
    } catch (err) {
      if (err instanceof RequestError && err.isNoResponders()) throw new BusNoRespondersError(subject);
      if (err instanceof TimeoutError || (err instanceof RequestError && err.cause instanceof TimeoutError)) {
        throw new BusTimeoutError(subject, opts.timeoutMs);
      }
      throw err;
    }
  }

  flush(): Promise<void> {
    return this.nc.flush();
  }

  state(): BusState {
    return this.current;
  }

  onStateChange(listener: (state: BusState) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.current === 'closed') return;
    try {
      await this.nc.drain();
    } catch {
      await this.nc.close();
    }
    this.set('closed');
  }

  private set(s: BusState): void {
    if (s === this.current) return;
    this.current = s;
    for (const l of this.listeners) l(s);
  }

  private async watch(): Promise<void> {
    void this.nc.closed().then(() => this.set('closed'));
    for await (const s of this.nc.status()) {
      if (s.type === 'disconnect' || s.type === 'reconnecting' || s.type === 'staleConnection') this.set('reconnecting');
      else if (s.type === 'reconnect') this.set('connected');
      else if (s.type === 'close') this.set('closed');
    }
  }
}
