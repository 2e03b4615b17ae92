import { randomUUID } from 'node:crypto';
import {
  BusClosedError,
  BusNoRespondersError,
  BusTimeoutError,
  type Bus,
  type BusHandler,
  type BusMessage,
  type BusState,
  type BusSubscription,
  type PublishOptions,
  type RequestOptions,
} from './bus.js';
import { tokensMatch } from './subject-match.js';

const defaultHandlerError = (err: unknown, subject: string): void =>
  console.error(`bus handler for ${subject} threw`, err);

interface Sub {
  pattern: string;
  /** Pattern tokens, split once: wildcard subscriptions are matched on every publish. */
  tokens: string[] | undefined;
  queue: string | undefined;
  handler: BusHandler;
}

interface PendingRequest {
  resolve: (m: BusMessage) => void;
  timer: NodeJS.Timeout;
}

/**
 * The bus inside one process (embedded mode, tests). Messages are copied and delivered on a later
 * microtask, as bytes, so code that runs on it behaves as it would on NATS. Exact subjects are found
 * in a map; only wildcard subscriptions are matched token by token; requests share one reply inbox.
 */
export class InProcessBus implements Bus {
  readonly kind = 'in-process';
  private readonly exact = new Map<string, Set<Sub>>();
  private readonly wildcard = new Set<Sub>();
  private readonly listeners = new Set<(s: BusState) => void>();
  private readonly inbox = `_INBOX.${randomUUID().replaceAll('-', '')}`;
  private readonly pending = new Map<string, PendingRequest>();
  private nextRequest = 0;
  private closed = false;
  private rr = 0;

  /** `onHandlerError`: a handler that throws is reported here and the bus goes on. */
  constructor(private readonly onHandlerError: (err: unknown, subject: string) => void = defaultHandlerError) {
    this.subscribe(`${this.inbox}.*`, (m) => {
      const token = m.subject.slice(this.inbox.length + 1);
      const p = this.pending.get(token);
      if (!p) return;
      this.pending.delete(token);
      clearTimeout(p.timer);
      p.resolve(m);
    });
  }

  publish(subject: string, data: Uint8Array, opts?: PublishOptions): void {
    if (this.closed) throw new BusClosedError();
    const msg: BusMessage = { subject, data: data.slice(), headers: { ...opts?.headers } };
    if (opts?.reply !== undefined) msg.reply = opts.reply;
    this.deliver(msg);
  }

  subscribe(subject: string, handler: BusHandler, opts?: { queue?: string }): BusSubscription {
    if (this.closed) throw new BusClosedError();
    const isWildcard = subject.includes('*') || subject.includes('>');
    const sub: Sub = { pattern: subject, tokens: isWildcard ? subject.split('.') : undefined, queue: opts?.queue, handler };
    if (isWildcard) this.wildcard.add(sub);
    else {
      const set = this.exact.get(subject) ?? new Set<Sub>();
      set.add(sub);
      this.exact.set(subject, set);
    }
    return {
      unsubscribe: () => {
        if (sub.tokens) this.wildcard.delete(sub);
        else {
          const set = this.exact.get(subject);
          set?.delete(sub);
          if (set?.size === 0) this.exact.delete(subject);
        }
      },
    };
  }

  request(subject: string, data: Uint8Array, opts: RequestOptions): Promise<BusMessage> {
    if (this.closed) return Promise.reject(new BusClosedError());
    const token = (this.nextRequest++).toString(36);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(token);
        reject(new BusTimeoutError(subject, opts.timeoutMs));
      }, opts.timeoutMs);
      this.pending.set(token, {
        resolve: (m) => (m.noResponders ? reject(new BusNoRespondersError(subject)) : resolve(m)),
        timer,
      });
      this.publish(subject, data, { reply: `${this.inbox}.${token}`, ...(opts.headers ? { headers: opts.headers } : {}) });
    });
  }

  async flush(): Promise<void> {
    await new Promise<void>((r) => setImmediate(r));
  }

  state(): BusState {
    return this.closed ? 'closed' : 'connected';
  }

  onStateChange(listener: (state: BusState) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    this.exact.clear();
    this.wildcard.clear();
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
    for (const l of this.listeners) l('closed');
  }

  /** Who gets a message on `subject`: every plain subscriber, and one member of each queue group. */
  private targets(subject: string): Sub[] {
    const targets: Sub[] = [];
    let groups: Map<string, Sub[]> | undefined;
    const consider = (s: Sub) => {
      if (s.queue === undefined) return void targets.push(s);
      groups ??= new Map();
      const g = groups.get(s.queue);
      if (g) g.push(s);
      else groups.set(s.queue, [s]);
    };
    const exact = this.exact.get(subject);
    if (exact) for (const s of exact) consider(s);
    if (this.wildcard.size > 0) {
      const tokens = subject.split('.');
      for (const s of this.wildcard) if (tokensMatch(s.tokens!, tokens)) consider(s);
    }
    if (groups) for (const members of groups.values()) targets.push(members[this.rr++ % members.length]!);
    return targets;
  }

  private deliver(msg: BusMessage): void {
    const targets = this.targets(msg.subject);
    if (targets.length === 0 && msg.reply !== undefined) {
      // As a NATS server does for a client that understands headers: nobody listens, say so at once.
      return this.deliver({ subject: msg.reply, data: new Uint8Array(0), headers: {}, noResponders: true });
    }
    for (const t of targets) {
      // Each subscriber gets its own copy, as it would from a server.
      const copy: BusMessage =
        targets.length > 1 ? { ...msg, data: msg.data.slice(), headers: { ...msg.headers } } : msg;
      queueMicrotask(() => {
        if (!this.isSubscribed(t)) return;
        try {
          t.handler(copy);
        } catch (err) {
          this.onHandlerError(err, copy.subject);
        }
      });
    }
  }

  private isSubscribed(s: Sub): boolean {
    return s.tokens ? this.wildcard.has(s) : this.exact.get(s.pattern)?.has(s) === true;
  }
}
