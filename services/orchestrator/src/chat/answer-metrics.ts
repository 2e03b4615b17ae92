import type { AiMetrics, TaskType } from '@actionedx/shared';
import type { CacheEntry } from '../cache/index.js';
import type { TaskProfile } from '../tasks/index.js';

/** The metric series one kind of answer (model, task type, cached or not) moves. */
interface AnswerSeries {
  requests: { inc(): void };
  latency: { observe(v: number): void };
  ttft: { observe(v: number): void };
  promptTokens: { inc(v: number): void };
  completionTokens: { inc(v: number): void };
  cost: { inc(v: number): void };
}

/** What one chat turn moves in `ai_*` metrics: requests, latency, time to first token, tokens and cost. */
export class AnswerMetrics {
  private readonly series = new Map<string, AnswerSeries>();

  constructor(private readonly metrics: AiMetrics) {}

  /** An answer went out; only a model call (`cached` false) adds tokens and cost. */
  answered(task: TaskProfile, entry: CacheEntry, cached: boolean, latencyMs: number, ttftMs: number | undefined): void {
    const s = this.seriesFor(entry.model, task.taskType, cached);
    s.requests.inc();
    s.latency.observe(latencyMs / 1000);
    if (ttftMs !== undefined) s.ttft.observe(ttftMs / 1000);
    if (cached) return;
    s.promptTokens.inc(entry.usage.prompt_tokens);
    s.completionTokens.inc(entry.usage.completion_tokens);
    s.cost.inc(entry.cost_usd);
  }

  /** A request ended with an error; each failed model call was counted by its target (ai_upstream_errors_total). */
  failed(task: TaskProfile): void {
    this.metrics.requests.inc({ model: task.model, task_type: task.taskType, status: 'error' });
  }

  /** Labelled children made once per label set: prom-client checks and hashes labels on every call otherwise. */
  private seriesFor(model: string, taskType: TaskType, cached: boolean): AnswerSeries {
    const id = `${model}\u0000${taskType}\u0000${cached}`;
    let s = this.series.get(id);
    if (!s) {
      const m = this.metrics;
      const labels = { model, task_type: taskType };
      const cachedLabel = cached ? 'true' : 'false';
      s = {
        requests: m.requests.labels({ ...labels, status: cached ? 'cached' : 'success' }),
        latency: m.latency.labels({ ...labels, cached: cachedLabel }),
        ttft: m.timeToFirstToken.labels({ ...labels, cached: cachedLabel }),
        promptTokens: m.tokens.labels({ ...labels, kind: 'prompt' }),
        completionTokens: m.tokens.labels({ ...labels, kind: 'completion' }),
        cost: m.cost.labels(labels),
      };
      this.series.set(id, s);
    }
    return s;
  }
}
