import { Subjects, type Bus, type BusSubscription } from '@actionedx/shared';
import type { AnswerLog, AnswerRecord, FrameFeed } from './answer-log.js';

interface Retained {
  messages: Array<{ data: Uint8Array; at: number }>;
  bytes: number;
  followers: Set<(data: Uint8Array) => void>;
}

export interface MemoryAnswerLogOptions {
  windowMs: number;
  maxBytesPerAnswer: number;
  storeMaxBytes: number;
  answerTtlMs: number;
}

/**
 * The answer log of one process (embedded mode, tests on the in-process bus): a wildcard subscription to every
 * retained subject (the workers' batched copy of the frames) keeps each answer's messages for the window, at most `maxBytesPerAnswer` per answer (the oldest
 * go first) and `storeMaxBytes` in all (the oldest answers go first). Records are kept for `answerTtlMs`, in
 * the same byte budget.
 */
export class MemoryAnswerLog implements AnswerLog {
  readonly kind = 'memory';
  private readonly frames = new Map<string, Retained>();
  private readonly records = new Map<string, { record: AnswerRecord; bytes: number; expiresAt: number }>();
  private frameBytes = 0;
  private recordBytes = 0;
  private subscription: BusSubscription | undefined;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly bus: Bus,
    private readonly o: MemoryAnswerLogOptions,
  ) {}

  async start(): Promise<void> {
    if (this.subscription) return;
    this.subscription = this.bus.subscribe(Subjects.chatRetainedAll, (msg) => {
      if (!msg.noResponders) this.append(msg.subject, msg.data);
    });
    this.sweeper = setInterval(() => this.sweep(), Math.min(this.o.windowMs, 10_000));
    this.sweeper.unref();
  }

  write(record: AnswerRecord): void {
    const bytes = JSON.stringify(record).length;
    const old = this.records.get(record.request_id);
    if (old) {
      this.recordBytes -= old.bytes;
      this.records.delete(record.request_id);
    }
    this.records.set(record.request_id, { record, bytes, expiresAt: Date.now() + this.o.answerTtlMs });
    this.recordBytes += bytes;
    // Records share the budget with frames: a quarter of it at most, the oldest go first.
    for (const [id, r] of this.records) {
      if (this.recordBytes <= this.o.storeMaxBytes / 4) break;
      this.records.delete(id);
      this.recordBytes -= r.bytes;
    }
  }

  async read(requestId: string): Promise<AnswerRecord | undefined> {
    const r = this.records.get(requestId);
    if (!r) return undefined;
    if (r.expiresAt <= Date.now()) {
      this.records.delete(requestId);
      this.recordBytes -= r.bytes;
      return undefined;
    }
    return r.record;
  }

  async hasFrames(subject: string): Promise<boolean> {
    const r = this.frames.get(subject);
    if (!r) return false;
    this.prune(subject, r, Date.now());
    return r.messages.length > 0;
  }

  async follow(subject: string, onData: (data: Uint8Array) => void): Promise<FrameFeed> {
    const known = this.frames.get(subject);
    if (known) this.prune(subject, known, Date.now());
    // Followed before anything is retained (an answer that has just started): its first messages are still to come.
    let retained = this.frames.get(subject);
    if (!retained) {
      retained = { messages: [], bytes: 0, followers: new Set() };
      this.frames.set(subject, retained);
    }
    // Replayed now, synchronously, then each new message as it is appended: none twice, none missed.
    for (const m of retained.messages) onData(m.data);
    retained.followers.add(onData);
    return { stop: () => void retained.followers.delete(onData) };
  }

  async close(): Promise<void> {
    this.subscription?.unsubscribe();
    this.subscription = undefined;
    clearInterval(this.sweeper);
    this.frames.clear();
    this.records.clear();
    this.frameBytes = 0;
    this.recordBytes = 0;
  }

  /** Bytes held now (frames and records), for tests and the stats. */
  get bytes(): number {
    return this.frameBytes + this.recordBytes;
  }

  private append(subject: string, data: Uint8Array): void {
    let r = this.frames.get(subject);
    if (!r) {
      r = { messages: [], bytes: 0, followers: new Set() };
      this.frames.set(subject, r);
    }
    const now = Date.now();
    r.messages.push({ data, at: now });
    r.bytes += data.byteLength;
    this.frameBytes += data.byteLength;
    this.prune(subject, r, now);
    for (const f of r.followers) f(data);
    // Over the whole budget: the oldest answers go first (a Map iterates in insertion order).
    for (const [s, old] of this.frames) {
      if (this.frameBytes <= this.o.storeMaxBytes) break;
      if (old === r) continue;
      this.drop(s, old);
    }
  }

  /** Past the window or over the answer's bound: its oldest messages go. */
  private prune(subject: string, r: Retained, now: number): void {
    let cut = 0;
    while (cut < r.messages.length && (now - r.messages[cut]!.at >= this.o.windowMs || r.bytes > this.o.maxBytesPerAnswer)) {
      r.bytes -= r.messages[cut]!.data.byteLength;
      this.frameBytes -= r.messages[cut]!.data.byteLength;
      cut += 1;
    }
    if (cut > 0) r.messages.splice(0, cut);
    if (r.messages.length === 0 && r.followers.size === 0) this.frames.delete(subject);
  }

  private drop(subject: string, r: Retained): void {
    this.frameBytes -= r.bytes;
    r.bytes = 0;
    r.messages = [];
    if (r.followers.size === 0) this.frames.delete(subject);
  }

  private sweep(): void {
    const now = Date.now();
    for (const [s, r] of this.frames) this.prune(s, r, now);
    for (const [id, r] of this.records) {
      if (r.expiresAt > now) continue;
      this.records.delete(id);
      this.recordBytes -= r.bytes;
    }
  }
}
