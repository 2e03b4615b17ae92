import { decodeJson, JobEventSchema, JobSubjects, type Bus, type BusSubscription, type JobEvent, type Logger } from '@actionedx/shared';

type Listener = (event: JobEvent) => void;

/**
 * Job events of the owners connected to this gateway: one bus subscription per owner (to their hashed subject),
 * opened with their first listener (a WebSocket, an SSE stream) and closed with the last. Each gateway hears only
 * the owners it serves, and every gateway serving an owner hears their events.
 */
export class JobPushHub {
  private readonly owners = new Map<string, { sub: BusSubscription; listeners: Set<Listener> }>();

  constructor(
    private readonly bus: Bus,
    private readonly logger: Logger,
  ) {}

  /** Owners with a subscription now. */
  get size(): number {
    return this.owners.size;
  }

  /** Calls `listener` with each event of `owner`'s jobs; returns the detach function. */
  attach(owner: string, listener: Listener): () => void {
    let entry = this.owners.get(owner);
    if (!entry) {
      const listeners = new Set<Listener>();
      const sub = this.bus.subscribe(JobSubjects.events(owner), (msg) => {
        let event: JobEvent;
        try {
          event = decodeJson(JobEventSchema, msg.data);
        } catch (err) {
          this.logger.warn({ err }, 'dropped a malformed job event');
          return;
        }
        for (const l of listeners) l(event);
      });
      entry = { sub, listeners };
      this.owners.set(owner, entry);
    }
    const { listeners } = entry;
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
      const current = this.owners.get(owner);
      if (current && current.listeners.size === 0) {
        current.sub.unsubscribe();
        this.owners.delete(owner);
      }
    };
  }

  /**
   * Resolves once the bus server has every subscription made so far, so events published after it reach them;
   * after `timeoutMs` at the latest (a bus that is down delivers nothing live anyway).
   */
  async flush(timeoutMs = 1_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.bus.flush().catch(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
  }

  close(): void {
    for (const { sub } of this.owners.values()) sub.unsubscribe();
    this.owners.clear();
  }
}
