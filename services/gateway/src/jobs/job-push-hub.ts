import {
  decodeJson,
  JobEventSchema,
  JobSubjects,
  ownerKey,
  type Bus,
  type BusMessage,
  type BusSubscription,
  type JobEvent,
  type Logger,
} from '@actionedx/shared';

type Listener = (event: JobEvent) => void;

/**
 * Job events for the owners connected to this gateway (their WebSockets, their SSE streams), whichever gateway
 * or worker published them. One bus subscription for every owner (`jobs.v1.events.*`, opened with the first
 * listener): job events are few (a handful per step) while sockets are many, so a subscription per socket's owner
 * would cost more than the events it saves. An event for an owner with no listener here is dropped undecoded.
 */
export class JobPushHub {
  private readonly listeners = new Map<string, Set<Listener>>();
  private sub: BusSubscription | undefined;

  constructor(
    private readonly bus: Bus,
    private readonly logger: Logger,
  ) {}

  /** Owners with a listener now. */
  get size(): number {
    return this.listeners.size;
  }

  /** Calls `listener` with each event of `owner`'s jobs; returns the detach function. */
  attach(owner: string, listener: Listener): () => void {
    this.sub ??= this.bus.subscribe(JobSubjects.allEvents, (msg) => this.onEvent(msg));
    const key = ownerKey(owner);
    let set = this.listeners.get(key);
    if (!set) {
      set = new Set();
      this.listeners.set(key, set);
    }
    set.add(listener);
    const own = set;
    return () => {
      own.delete(listener);
      if (own.size === 0 && this.listeners.get(key) === own) this.listeners.delete(key);
    };
  }

  /**
   * Resolves once the bus server has the subscription, so events published after it reach it; after `timeoutMs`
   * at the latest (a bus that is down delivers nothing live anyway).
   */
  async flush(timeoutMs = 1_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.bus.flush().catch(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
  }

  close(): void {
    this.sub?.unsubscribe();
    this.sub = undefined;
    this.listeners.clear();
  }

  private onEvent(msg: BusMessage): void {
    const set = this.listeners.get(JobSubjects.ownerKeyOf(msg.subject));
    if (!set) return;
    let event: JobEvent;
    try {
      event = decodeJson(JobEventSchema, msg.data);
    } catch (err) {
      this.logger.warn({ err }, 'dropped a malformed job event');
      return;
    }
    for (const l of [...set]) l(event);
  }
}
