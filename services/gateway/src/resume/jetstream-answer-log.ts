import {
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/nats-core';
import { ResumeStreamNames, Subjects, encodeJson, ensureStream, type Logger } from '@actionedx/shared';
import type { AnswerLog, AnswerRecord, FrameFeed } from './answer-log.js';

const API_TIMEOUT_MS = 5_000;
/**
 * The per-answer message bound is RESUME_MAX_BYTES / this. A retained message is a batch of frames (at most 20 ms
 * or 8 KiB of text: `RetainedFrames`); a streamed answer's batches are mostly well under this size.
 */
const FRAME_BYTES_ESTIMATE = 256;
/** The duplicate window may not exceed max_age (JetStream refuses the stream otherwise); no message ids are used. */
const DUPLICATE_WINDOW_MS = 60_000;
const decoder = new TextDecoder();

export interface JetStreamAnswerLogOptions {
  windowMs: number;
  maxBytesPerAnswer: number;
  storeMaxBytes: number;
  answerTtlMs: number;
  logger: Logger;
}

/**
 * The answer log on JetStream (nats-server 2.9 features only), two memory streams:
 * - `CHAT_FRAMES` captures `chat.v1.retained.>`: the copy of each answer's frames the workers publish beside the
 *   live ones, in batches of 20 ms (`RetainedFrames`), core publishes without acks. Capturing the live frames
 *   themselves cost nats-server ~8 µs per message (one per token at streaming rates): the relay of 200 sessions
 *   fell from 0.73x to 0.5x of bare ws on 2 cores. `max_age` is the window, `max_bytes` the store bound,
 *   `max_msgs_per_subject` the per-answer bound (oldest go first).
 * - `CHAT_ANSWERS` keeps the last record per request (`chat.v1.answers.<id>`): the owner at dispatch, the final
 *   answer at the end, for `answerTtlMs`.
 * A resume reads an answer with an ordered consumer filtered on its subject: the retained frames, then the live
 * ones, each once and in order (the consumer recreates itself at the right sequence after a gap).
 */
export class JetStreamAnswerLog implements AnswerLog {
  readonly kind = 'jetstream';
  private js: JetStreamClient | undefined;
  private jsm: JetStreamManager | undefined;

  constructor(
    private readonly connection: () => Promise<NatsConnection>,
    private readonly o: JetStreamAnswerLogOptions,
  ) {}

  async start(): Promise<void> {
    const jsm = await this.manager();
    for (const cfg of [this.framesStream(), this.answersStream()]) {
      if ((await ensureStream(jsm, cfg)) === 'updated') this.o.logger.info({ stream: cfg.name }, 'resume stream updated');
    }
  }

  write(record: AnswerRecord): void {
    void this.client()
      .then((js) => js.publish(Subjects.chatAnswer(record.request_id), encodeJson(record), { timeout: API_TIMEOUT_MS }))
      .catch((err: unknown) => this.o.logger.warn({ err, request_id: record.request_id }, 'could not store the answer record'));
  }

  async read(requestId: string): Promise<AnswerRecord | undefined> {
    const jsm = await this.manager();
    const m = await jsm.streams.getMessage(ResumeStreamNames.answers, { last_by_subj: Subjects.chatAnswer(requestId) }).catch(notFound);
    if (!m) return undefined;
    return JSON.parse(decoder.decode(m.data)) as AnswerRecord;
  }

  async hasFrames(subject: string): Promise<boolean> {
    const jsm = await this.manager();
    const m = await jsm.streams.getMessage(ResumeStreamNames.frames, { last_by_subj: subject }).catch(notFound);
    return m !== null && m !== undefined;
  }

  async follow(subject: string, onData: (data: Uint8Array) => void, onError: (err: unknown) => void): Promise<FrameFeed> {
    const js = await this.client();
    const consumer = await js.consumers.get(ResumeStreamNames.frames, {
      filter_subjects: subject,
      deliver_policy: DeliverPolicy.All,
      inactive_threshold: nanos(30_000),
    });
    const messages: ConsumerMessages = await consumer.consume({ max_messages: 256 });
    let stopped = false;
    void (async () => {
      try {
        for await (const m of messages) {
          if (stopped) break;
          onData(m.data);
        }
      } catch (err) {
        if (!stopped) onError(err);
      }
    })();
    return {
      stop: () => {
        stopped = true;
        void messages.close().catch(() => {});
      },
    };
  }

  async close(): Promise<void> {
    // The streams outlive this gateway: they are what another replica resumes from.
  }

  private async client(): Promise<JetStreamClient> {
    this.js ??= jetstream(await this.connection(), { timeout: API_TIMEOUT_MS });
    return this.js;
  }

  private async manager(): Promise<JetStreamManager> {
    this.jsm ??= await jetstreamManager(await this.connection(), { timeout: API_TIMEOUT_MS });
    return this.jsm;
  }

  private framesStream(): Partial<StreamConfig> & { name: string } {
    return {
      name: ResumeStreamNames.frames,
      subjects: [Subjects.chatRetainedAll],
      retention: RetentionPolicy.Limits,
      storage: StorageType.Memory,
      max_age: nanos(this.o.windowMs),
      max_bytes: this.o.storeMaxBytes,
      max_msgs_per_subject: Math.max(64, Math.floor(this.o.maxBytesPerAnswer / FRAME_BYTES_ESTIMATE)),
      discard: DiscardPolicy.Old,
      duplicate_window: nanos(Math.min(DUPLICATE_WINDOW_MS, this.o.windowMs)),
      num_replicas: 1,
    };
  }

  private answersStream(): Partial<StreamConfig> & { name: string } {
    return {
      name: ResumeStreamNames.answers,
      subjects: [Subjects.chatAnswersAll],
      retention: RetentionPolicy.Limits,
      storage: StorageType.Memory,
      max_age: nanos(this.o.answerTtlMs),
      max_bytes: Math.max(1024 * 1024, Math.floor(this.o.storeMaxBytes / 4)),
      max_msgs_per_subject: 1,
      discard: DiscardPolicy.Old,
      duplicate_window: nanos(Math.min(DUPLICATE_WINDOW_MS, this.o.answerTtlMs)),
      num_replicas: 1,
    };
  }
}

/** `getMessage` rejects when the stream has no such message (older clients) or returns null (newer). */
function notFound(err: unknown): null {
  // 10037: no message; 10059: no stream (nothing was ever retained here).
  if (err instanceof JetStreamApiError && (err.code === 10037 || err.code === 10059 || err.status === 404)) return null;
  throw err;
}
