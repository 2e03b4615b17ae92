import { AppError } from '@actionedx/shared';
import type { Completion, ModelTarget, Permit } from './model-target.js';
import type { RouterMetrics } from './router-metrics.js';
import type { PromptMessage } from '../tasks/index.js';

/** A target that let us in, with its permit. */
export interface Admitted {
  target: ModelTarget;
  permit: Permit;
}

/** Where the text of the answer goes; it remembers whether any went out, so a fallback knows to reset. */
export class AnswerOutlet {
  emitted = false;

  constructor(private readonly sink: { onDelta(delta: string): void; onReset(): void }) {}

  emit(delta: string): void {
    this.emitted = true;
    this.sink.onDelta(delta);
  }

  /** Voids what went out (the receiver starts over); nothing to say when nothing went out. */
  reset(): void {
    if (!this.emitted) return;
    this.emitted = false;
    this.sink.onReset();
  }
}

/** A call that failed (not one aborted because another won), and whether its text had gone out. */
export interface LegFailure {
  target: ModelTarget;
  error: unknown;
  midStream: boolean;
}

export type LegResult = { completion: Completion; failures: LegFailure[] } | { completion: undefined; failures: LegFailure[] };

export interface LegOptions {
  messages: PromptMessage[];
  maxTokens: number;
  temperature?: number | undefined;
  signal: AbortSignal;
  headers?: Record<string, string> | undefined;
  out: AnswerOutlet;
  /** Start the next target too when the first has sent no token after this long. */
  hedgeAfterMs: number | undefined;
  /** The next target that lets us in, if any. */
  takeNext: () => Admitted | undefined;
  /** Whether targets are left after this leg's. */
  hasMore: () => boolean;
  metrics: Pick<RouterMetrics, 'hedges'>;
}

interface Contestant {
  target: ModelTarget;
  controller: AbortController;
}

/** Why a hedged call was stopped: the other one produced a token first. */
const hedgeLost = () => new AppError('cancelled', 'another model target answered first');

/**
 * One step of a route: a call of one target, and with a hedge delay a second call of the next target when the
 * first has sent no token in time. The first call to produce a token wins and its text goes out; the other is
 * aborted (its upstream connection closed, its usage never recorded). Ends with the winner's answer, or with
 * the failures when every call of the step failed.
 */
export class RouteLeg {
  private readonly contestants: Contestant[] = [];
  private readonly failures: LegFailure[] = [];
  private winner: Contestant | undefined;
  private running = 0;
  private hedgeTimer: NodeJS.Timeout | undefined;
  private finish!: (r: LegResult) => void;

  constructor(private readonly o: LegOptions) {}

  run(first: Admitted): Promise<LegResult> {
    return new Promise<LegResult>((resolve) => {
      this.finish = (r) => {
        clearTimeout(this.hedgeTimer);
        resolve(r);
      };
      this.start(first);
      if (this.o.hedgeAfterMs !== undefined && this.o.hasMore()) {
        this.hedgeTimer = setTimeout(() => this.hedge(), this.o.hedgeAfterMs);
      }
    });
  }

  private start({ target, permit }: Admitted): void {
    const controller = new AbortController();
    const c: Contestant = { target, controller };
    this.contestants.push(c);
    this.running += 1;
    target
      .call(permit, {
        messages: this.o.messages,
        maxTokens: this.o.maxTokens,
        ...(this.o.temperature === undefined ? {} : { temperature: this.o.temperature }),
        signal: AbortSignal.any([this.o.signal, controller.signal]),
        ...(this.o.headers ? { headers: this.o.headers } : {}),
        hasFallback: this.o.hasMore(),
        onDelta: (d) => {
          if (!this.winner) this.crown(c);
          if (this.winner === c) this.o.out.emit(d);
        },
      })
      .then(
        (completion) => this.settled(c, completion, undefined),
        (err: unknown) => this.settled(c, undefined, err),
      );
  }

  private hedge(): void {
    if (this.winner || this.running === 0) return;
    const next = this.o.takeNext();
    if (next) this.start(next);
  }

  private crown(c: Contestant): void {
    this.winner = c;
    clearTimeout(this.hedgeTimer);
    for (const other of this.contestants) if (other !== c) other.controller.abort(hedgeLost());
    if (this.contestants.length > 1) this.countHedge(c === this.contestants[0] ? 'primary' : 'hedge');
  }

  private settled(c: Contestant, completion: Completion | undefined, err: unknown): void {
    this.running -= 1;
    if (completion) {
      // An answer without any text has not been crowned yet.
      if (!this.winner) this.crown(c);
      if (this.winner === c) this.finish({ completion, failures: this.failures });
      return;
    }
    if (this.winner && this.winner !== c) return; // the loser, aborted
    this.failures.push({ target: c.target, error: err, midStream: this.winner === c && this.o.out.emitted });
    if (this.winner === c) return this.finish({ completion: undefined, failures: this.failures });
    if (this.running > 0) return; // the other call of the hedge goes on alone
    if (this.contestants.length > 1) this.countHedge('none');
    this.finish({ completion: undefined, failures: this.failures });
  }

  private countHedge(winner: 'primary' | 'hedge' | 'none'): void {
    this.o.metrics.hedges.inc({ target: this.contestants[0]!.target.name, winner });
  }
}
