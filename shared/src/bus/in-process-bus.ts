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
import { subjectMatches } from './subject-match.js';

const defaultHandlerError = (err: unknown, subject: string): void =>
  console.error(`bus handler for ${subject} threw`, err);

interface Sub {
  pattern: string;
  queue: string | undefined;
  handler: BusHandler;
}

/**
 * The bus inside one process (embedded mode, tests). Messages are copied and delivered on a later
 * microtask, as bytes, so code that runs on it behaves as it would on NATS.
 */
export class InProcessBus implements Bus {
  readonly kind = 'in-process';
  private readonly subs = new Set<Sub>();
  private readonly listeners = new Set<(s: BusState) => void>();
  private closed = false;
  private rr = 0;

  /** `onHandlerError`: a handler that throws is reported here and the bus goes on. */
  constructor(private readonly onHandlerError: (err: unknown, subject: string) => void = defaultHandlerError) {}

  publish(subject: string, data: Uint8Array, opts?: PublishOptions): void {
    if (this.closed) throw new BusClosedError();
    const msg: BusMessage = { subject, data: data.slice(), headers: { ...opts?.headers } };
    if (opts?.reply !== undefined) msg.reply = opts.reply;
    this.deliver(msg);
  }

  subscribe(subject: string, handler: BusHandler, opts?: { queue?: string }): BusSubscription {
    if (this.closed) throw new BusClosedError();
    const sub: Sub = { pattern: subject, queue: opts?.queue, handler };
    this.subs.add(sub);
    return { unsubscribe: () => void this.subs.delete(sub) };
  }

  request(subject: string, data: Uint8Array, opts: RequestOptions): Promise<BusMessage> {
    if (this.closed) return Promise.reject(new BusClosedError());
    if (!this.hasInterest(subject)) return Promise.reject(new BusNoRespondersError(subject));
    const inbox = `_INBOX.${randomUUID().replaceAll('-', '')}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        sub.unsubscribe();
        reject(new BusTimeoutError(subject, opts.timeoutMs));
      }, opts.timeoutMs);
      const sub = this.subscribe(inbox, (msg) => {
        clearTimeout(timer);
        sub.unsubscribe();
        resolve(msg);
      });
      this.publish(subject, data, { reply: inbox, ...(opts.headers ? { headers: opts.headers } : {}) });
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
    this.subs.clear();
    for (const l of this.listeners) l('closed');
  }

  private hasInterest(subject: string): boolean {
    for (const s of this.subs) if (subjectMatches(s.pattern, subject)) return true;
    return false;
  }

  private deliver(msg: BusMessage): void {
    const groups = new Map<string, Sub[]>();
    const targets: Sub[] = [];
    for (const s of this.subs) {
      if (!subjectMatches(s.pattern, msg.subject)) continue;
      if (s.queue === undefined) targets.push(s);
      else {
        const g = groups.get(s.queue);
        if (g) g.push(s);
        else groups.set(s.queue, [s]);
      }
    }
    for (const members of groups.values()) targets.push(members[this.rr++ % members.length]!);
    for (const t of targets) {
      // Each subscriber gets its own copy, as it would from a server.
      const copy: BusMessage = { ...msg, data: targets.length > 1 ? msg.data.slice() : msg.data, headers: { ...msg.headers } };
      queueMicrotask(() => {
        if (!this.subs.has(t)) return;
        try {
          t.handler(copy);
        } catch (err) {
          this.onHandlerError(err, copy.subject);
        }
      });
    }
  }
}
