import { UpstreamError } from './upstream-error.js';

/**
 * The two clocks of a streamed answer, on one timer: no first token within `firstTokenMs` of the call, or no
 * event for `stallMs` after it, aborts the call with a `first_token_timeout` or `stall` error. Progress only
 * moves a deadline; the timer is re-armed when it fires, never per event.
 */
export class StreamWatchdog {
  private deadline: number;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private streaming = false;
  private stopped = false;

  constructor(
    private readonly firstTokenMs: number,
    private readonly stallMs: number,
    private readonly onExpire: (err: UpstreamError) => void,
  ) {
    this.deadline = performance.now() + firstTokenMs;
    this.arm();
  }

  /** The first piece of text arrived: from now on, silence is measured between events. */
  firstToken(): void {
    this.streaming = true;
    this.progress();
    // The first-token deadline may lie well after the first stall deadline.
    if (this.deadline < this.timerAt) this.arm();
  }

  /** An event arrived. */
  progress(): void {
    if (this.streaming) this.deadline = performance.now() + this.stallMs;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private arm(): void {
    clearTimeout(this.timer);
    this.timerAt = this.deadline;
    this.timer = setTimeout(this.check, Math.max(0, Math.ceil(this.deadline - performance.now())));
  }

  private readonly check = (): void => {
    if (this.stopped) return;
    if (performance.now() < this.deadline) return this.arm();
    this.stopped = true;
    this.onExpire(
      this.streaming
        ? new UpstreamError('stall', `the model stream stalled (no event for ${this.stallMs} ms)`)
        : new UpstreamError('first_token_timeout', `the model sent no token within ${this.firstTokenMs} ms`),
    );
  };
}
