import { retainedSubjectOf } from '../subjects.js';
import { encodeFrames } from './codec.js';
import type { Frame } from './frames.js';

/** A worker gathers an answer's frames this long before it publishes their retained copy... */
export const RETAIN_BATCH_MS = 20;
/** ... or until their chunks hold this many characters. */
export const RETAIN_BATCH_CHARS = 8_192;

/**
 * The retained copy of one answer's frames (on `Subjects.chatRetained`, captured by the `CHAT_FRAMES` stream for
 * resumes): the same frames as the live ones, in the same order, published in batches of at most 20 ms or 8 KiB of
 * text, and at once with the last frame. The broker stores one message per batch instead of one per live
 * message: at a token a millisecond, a twentieth of the messages (a resumed client gets what it missed, then the
 * rest 20 ms behind the live stream at most).
 */
export class RetainedFrames {
  private frames: Frame[] = [];
  private chars = 0;
  private timer: NodeJS.Timeout | undefined;
  /** The live message's bytes while the batch is that one message alone (a cached answer's only batch): sent as is. */
  private encoded: Uint8Array | undefined;

  constructor(
    private readonly subject: string,
    private readonly publish: (subject: string, data: Uint8Array) => void,
  ) {}

  /** The retained copy of the answer whose frames go to `replyTo`; undefined when that is not a frame subject. */
  static forReplyTo(replyTo: string, publish: (subject: string, data: Uint8Array) => void): RetainedFrames | undefined {
    const subject = retainedSubjectOf(replyTo);
    return subject === undefined ? undefined : new RetainedFrames(subject, publish);
  }

  /**
   * Frames just published live; `last`: the answer ends with them (or is handed back), so they go out now.
   * `encoded`: the live message's bytes (`encodeFrames(frames)`), reused when the batch is that message alone.
   */
  add(frames: readonly Frame[], last: boolean, encoded?: Uint8Array): void {
    this.encoded = this.frames.length === 0 ? encoded : undefined;
    for (const f of frames) {
      this.frames.push(f);
      if (f.type === 'chunk') this.chars += f.delta.length;
    }
    if (last || this.chars >= RETAIN_BATCH_CHARS) return this.flush();
    if (this.timer === undefined) {
      this.timer = setTimeout(this.flush, RETAIN_BATCH_MS);
      this.timer.unref();
    }
  }

  /** Publishes what was gathered (nothing when there is nothing). */
  readonly flush = (): void => {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.frames.length === 0) return;
    const frames = this.frames;
    const encoded = this.encoded;
    this.frames = [];
    this.chars = 0;
    this.encoded = undefined;
    try {
      this.publish(this.subject, encoded ?? encodeFrames(frames));
    } catch {
      // A closed bus loses the copy as it loses the live frames: a resume falls back on the final answer.
    }
  };
}
