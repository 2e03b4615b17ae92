import type { ChatResponse } from '@actionedx/shared';

/** Who an answer belongs to and, once it is done, the answer itself: what a resume checks and falls back on. */
export interface AnswerRecord {
  request_id: string;
  /** The user who asked: only they may resume it. */
  user_id: string;
  session_id?: string | undefined;
  /** The gateway that dispatched it: its frames travel on `chat.v1.frames.<gateway_id>.<request_id>`. */
  gateway_id: string;
  /** The final answer (the `response` message's body), once known. */
  response?: ChatResponse | undefined;
}

/** A live feed of one answer's frames; `stop` ends it. */
export interface FrameFeed {
  stop(): void;
}

/**
 * Where answers are retained for a resume on any replica: every frame of every answer (the copy its worker
 * publishes in batches on the retained subject, captured as it goes), and one record per answer. On NATS: JetStream streams in memory (`jetstream-answer-log.ts`);
 * on the in-process bus: this process's memory (`memory-answer-log.ts`).
 */
export interface AnswerLog {
  readonly kind: 'jetstream' | 'memory';
  /** Make what the log needs (streams, subscriptions); retried by the caller until it works. */
  start(): Promise<void>;
  /** Store the record (the last one written per request wins). In the background: failures are logged. */
  write(record: AnswerRecord): void;
  read(requestId: string): Promise<AnswerRecord | undefined>;
  /** Whether any message on the retained subject (`Subjects.chatRetained`) is still kept. */
  hasFrames(subject: string): Promise<boolean>;
  /**
   * Every retained message on `subject`, in order, then each new one as it comes: each exactly once. `onData` runs
   * for each message's bytes (a frame or a batch of frames).
   */
  follow(subject: string, onData: (data: Uint8Array) => void, onError: (err: unknown) => void): Promise<FrameFeed>;
  close(): Promise<void>;
}
