import { AppError, type Logger, type TaskType } from '@actionedx/shared';
import type { BreakerState } from '../resilience/index.js';
import type { PromptMessage } from '../tasks/index.js';
import { ModelTarget, type Completion, type ModelTargetDeps, type SkipReason } from './model-target.js';
import { AnswerOutlet, RouteLeg, type Admitted } from './route-leg.js';
import type { RouterMetrics } from './router-metrics.js';
import type { RouteConfig, RoutingConfig } from './targets-config.js';
import { TokenCounter } from './token-counter.js';
import { UpstreamError, type UpstreamErrorKind } from './upstream-error.js';

export interface RouteRequest {
  taskType: TaskType;
  messages: PromptMessage[];
  maxTokens: number;
  /** Sampling temperature; the provider's default when absent. */
  temperature?: number | undefined;
  /** The request's end (client gone, deadline): every call of the route stops. */
  signal: AbortSignal;
  headers?: Record<string, string>;
  /** Each piece of the answer, as it comes. */
  onDelta: (delta: string) => void;
  /** The pieces sent so far are void: another target's whole answer follows. */
  onReset: () => void;
  /** Whether an answer is good enough; one that is not gets one more try on the next target. */
  accept?: (c: Completion) => boolean;
}

export interface ModelRouterDeps extends Omit<ModelTargetDeps, 'tokens'> {
  metrics: RouterMetrics;
  logger: Logger;
  /** Uniform in [0, 1), for weighted routes. */
  random?: () => number;
}

/** Why an answer moved on from a target: the `reason` label of `ai_fallbacks_total`. */
type FallbackReason = UpstreamErrorKind | SkipReason | 'quality';

interface Route {
  cfg: RouteConfig;
  entries: { target: ModelTarget; weight: number | undefined }[];
}

/**
 * Routes a task type's answer over its ordered model targets:
 *
 * ```
 * next target ─ breaker open / cooling / full → skip
 *             ─ call (retries before the first token; a hedge after hedge_after_ms)
 *                 answer, accepted        → done
 *                 answer, refused once    → reset → next target (once)
 *                 failure before any text → next target, invisibly
 *                 failure after text      → reset → next target's whole answer
 * no target left → upstream_unavailable (retryable)
 * ```
 */
export class ModelRouter {
  private readonly targets = new Map<string, ModelTarget>();
  private readonly routes = new Map<TaskType, Route>();
  private readonly random: () => number;

  constructor(
    routing: RoutingConfig,
    private readonly deps: ModelRouterDeps,
  ) {
    this.random = deps.random ?? Math.random;
    const tokens = new TokenCounter();
    for (const cfg of Object.values(routing.targets)) this.targets.set(cfg.name, new ModelTarget(cfg, { ...deps, tokens }));
    for (const [task, cfg] of Object.entries(routing.routes) as [TaskType, RouteConfig][]) {
      this.routes.set(task, { cfg, entries: cfg.targets.map((e) => ({ target: this.targets.get(e.name)!, weight: e.weight })) });
    }
  }

  /** The model a task type asks for first: part of its cache key, and its label when nothing answered. */
  primaryModel(taskType: TaskType): string {
    return this.routes.get(taskType)!.entries[0]!.target.model;
  }

  /** The models each task type's route may answer with, in the order they are tried (weighted ones as listed). */
  routeModels(): Record<TaskType, string[]> {
    return Object.fromEntries([...this.routes].map(([task, route]) => [task, [...new Set(route.entries.map((e) => e.target.model))]])) as Record<
      TaskType,
      string[]
    >;
  }

  /** Each target's breaker, as this replica sees it (for health). */
  breakerStates(): Record<string, BreakerState> {
    return Object.fromEntries([...this.targets.values()].map((t) => [t.name, t.breakerState()]));
  }

  async complete(req: RouteRequest): Promise<Completion> {
    const route = this.routes.get(req.taskType)!;
    const queue = this.order(route);
    const out = new AnswerOutlet(req);
    const takeNext = (): Admitted | undefined => this.takeNext(queue);
    let spareTry = route.cfg.qualityFallback;
    let kept: Completion | undefined;
    let lastError: unknown;
    for (let first = takeNext(); first; first = takeNext()) {
      const leg = await new RouteLeg({
        messages: req.messages,
        maxTokens: req.maxTokens,
        temperature: req.temperature,
        signal: req.signal,
        headers: req.headers,
        out,
        hedgeAfterMs: route.cfg.hedgeAfterMs,
        takeNext,
        hasMore: () => queue.length > 0,
        metrics: this.deps.metrics,
      }).run(first);
      if (req.signal.aborted) throw req.signal.reason;
      for (const f of leg.failures) {
        if (!(f.error instanceof UpstreamError)) throw f.error; // a bug, not the provider: no fallback hides it
        lastError = f.error;
        this.fellBack(f.target, f.error.kind, f.midStream);
      }
      const answer = leg.completion;
      if (answer) {
        if (!req.accept || req.accept(answer)) return answer;
        if (!spareTry || queue.length === 0) return answer;
        spareTry = false;
        kept = answer;
        this.fellBack(this.targets.get(answer.target)!, 'quality', out.emitted);
        this.deps.logger.warn({ target: answer.target, model: answer.model }, 'answer failed the quality check: asking the next model target');
      }
      out.reset();
    }
    if (kept) {
      // Every later target failed: the answer we had, below the bar (and so not cached), beats none.
      out.emit(kept.text);
      return kept;
    }
    throw unavailable(lastError);
  }

  /** The route's targets for one request: weighted neighbours drawn in proportion, the rest in place. */
  private order(route: Route): ModelTarget[] {
    const { entries } = route;
    if (entries.length === 1) return [entries[0]!.target];
    const out: ModelTarget[] = [];
    for (let i = 0; i < entries.length; ) {
      if (entries[i]!.weight === undefined) {
        out.push(entries[i++]!.target);
        continue;
      }
      const group: { target: ModelTarget; weight: number }[] = [];
      for (; i < entries.length && entries[i]!.weight !== undefined; i++) group.push(entries[i] as { target: ModelTarget; weight: number });
      while (group.length > 0) {
        let draw = this.random() * group.reduce((sum, e) => sum + e.weight, 0);
        const k = Math.max(0, group.findIndex((e) => (draw -= e.weight) < 0));
        out.push(group.splice(k, 1)[0]!.target);
      }
    }
    return out;
  }

  /** The next target that lets us in; the ones passed over are counted as fallbacks. */
  private takeNext(queue: ModelTarget[]): Admitted | undefined {
    for (let target = queue.shift(); target; target = queue.shift()) {
      const permit = target.admit();
      if (typeof permit !== 'string') return { target, permit };
      this.fellBack(target, permit, false);
    }
    return undefined;
  }

  private fellBack(target: ModelTarget, reason: FallbackReason, midStream: boolean): void {
    this.deps.metrics.fallbacks.inc({ target: target.name, reason, phase: midStream ? 'mid_stream' : 'before_first_token' });
  }
}

/** Every target failed or was unavailable: a clear, retryable error that says what the last one did. */
function unavailable(last: unknown): AppError {
  if (last instanceof UpstreamError) {
    // A provider that asked us to wait says when to try again: the caller (a client, the job queue) can honour it.
    return new AppError('upstream_unavailable', `No model provider could answer (the last one: ${last.message}).`, {
      cause: last,
      ...(last.retryAfterMs === undefined ? {} : { retryAfterMs: last.retryAfterMs }),
    });
  }
  return new AppError('upstream_unavailable', 'No model provider is available right now (circuits open or rate limited).');
}

