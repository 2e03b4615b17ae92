import { AppError } from '../errors.js';

/** Headers travel with a message on every bus (request id, trace context). */
export type BusHeaders = Record<string, string>;

export interface BusMessage {
  subject: string;
  data: Uint8Array;
  headers: BusHeaders;
  /** Where a reply goes, for a request. */
  reply?: string;
  /**
   * Set on the message the server sends to a reply subject when something was published with that reply
   * and nobody subscribed to its subject (NATS "no responders", status 503). Its data is empty.
   */
  noResponders?: boolean;
}

export type BusHandler = (msg: BusMessage) => void;

export interface BusSubscription {
  unsubscribe(): void;
}

export type BusState = 'connected' | 'reconnecting' | 'closed';

export interface PublishOptions {
  headers?: BusHeaders;
  /**
   * Replies go there. When nobody listens on the subject, a `noResponders` message goes there at once,
   * delivered to the publisher's own subscriptions (the reply subject must be one of them).
   */
  reply?: string;
}

export interface RequestOptions {
  timeoutMs: number;
  headers?: BusHeaders;
}

/**
 * The message bus as the services see it. Implemented over NATS and in-process; both move bytes,
 * so the same encode/decode runs everywhere.
 *
 * Delivery is at most once, as on core NATS: a publish while disconnected is lost without an error.
 * Callers make loss visible with acks, sequence numbers and timers.
 */
export interface Bus {
  readonly kind: 'nats' | 'in-process';
  publish(subject: string, data: Uint8Array, opts?: PublishOptions): void;
  /** `queue`: members of one queue group share the messages, each going to one of them. */
  subscribe(subject: string, handler: BusHandler, opts?: { queue?: string }): BusSubscription;
  /**
   * Publish and wait for one reply. Rejects with `BusNoRespondersError` at once when no one listens,
   * with `BusTimeoutError` after `timeoutMs`.
   */
  request(subject: string, data: Uint8Array, opts: RequestOptions): Promise<BusMessage>;
  /** Resolves when the server has seen everything published before it. */
  flush(): Promise<void>;
  state(): BusState;
  /** Called on every change of state; returns a function that stops the calls. */
  onStateChange(listener: (state: BusState) => void): () => void;
  /** Lets handlers finish what they have, then closes. */
  close(): Promise<void>;
}

/** Nobody listens on the subject (NATS "no responders"): no worker of that kind is running. */
export class BusNoRespondersError extends AppError {
  constructor(readonly subject: string) {
    super('no_workers');
    this.name = 'BusNoRespondersError';
  }
}

/** Nobody answered in time: the workers are gone, stuck or overloaded. */
export class BusTimeoutError extends AppError {
  constructor(
    readonly subject: string,
    readonly timeoutMs: number,
  ) {
    super('no_workers', 'No worker answered in time.');
    this.name = 'BusTimeoutError';
  }
}

/** The bus was closed (the service is stopping, or never connected). */
export class BusClosedError extends AppError {
  constructor() {
    super('bus_unavailable');
    this.name = 'BusClosedError';
  }
}
