import type { CacheEntry } from './answer-store.js';

/** Where an answer came from: the stored cache, another request's model call, or this request's own. */
export type AnswerSource = 'cache' | 'peer' | 'model';

export interface FlightResult {
  entry: CacheEntry;
  source: AnswerSource;
}

/**
 * One answer being produced in this process, shared by every request that asks for it while it runs.
 * Followers get the chunks already produced, then each new one, then the answer; a reset voids the chunks for
 * everyone (followers are told, late joiners never see them). The shared work is
 * aborted only when every follower has gone: one follower leaving never stops it for the others.
 */
export class LocalFlight {
  private readonly chunks: string[] = [];
  private readonly listeners = new Map<(delta: string) => void, (() => void) | undefined>();
  private followers = 0;
  private settled = false;
  private readonly controller = new AbortController();
  readonly result: Promise<FlightResult>;
  private settle!: { resolve: (r: FlightResult) => void; reject: (e: unknown) => void };

  constructor() {
    this.result = new Promise<FlightResult>((resolve, reject) => (this.settle = { resolve, reject }));
    // Followers always attach a handler; this one keeps a failure with no follower from going unhandled.
    this.result.catch(() => {});
  }

  /** Aborted when no follower is left. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  push(delta: string): void {
    this.chunks.push(delta);
    for (const l of this.listeners.keys()) l(delta);
  }

  /** What was produced so far is void (the model failed mid-answer): late joiners get only what follows. */
  reset(): void {
    if (this.chunks.length === 0) return;
    this.chunks.length = 0;
    for (const onReset of this.listeners.values()) onReset?.();
  }

  resolve(result: FlightResult): void {
    this.settled = true;
    this.settle.resolve(result);
  }

  fail(err: unknown): void {
    this.settled = true;
    this.settle.reject(err);
  }

  /**
   * Replays what was produced so far into `onDelta`, then streams the rest (and resets into `onReset`);
   * returns a detach function.
   */
  follow(onDelta: (delta: string) => void, signal: AbortSignal, onReset?: () => void): () => void {
    this.followers++;
    for (const c of this.chunks) onDelta(c);
    this.listeners.set(onDelta, onReset);
    let detached = false;
    const detach = () => {
      if (detached) return;
      detached = true;
      this.listeners.delete(onDelta);
      signal.removeEventListener('abort', detach);
      if (--this.followers === 0 && !this.settled) this.controller.abort(signal.reason);
    };
    if (signal.aborted) detach();
    else signal.addEventListener('abort', detach, { once: true });
    return detach;
  }
}
