import type { ChatResponse, Mode, TaskType, Usage } from '@actionedx/shared';

/** Identity of one request, carried in bus headers and logs. */
export interface DispatchContext {
  request_id: string;
  traceparent?: string | undefined;
}

/** Which of a worker's lanes sends the answer (see `DispatchListener.onChunk`). */
export type AnswerLane = 'lookup' | 'model';

/** Where a finished answer came from: a stored answer, a concurrent identical request's model call, or its own. */
export type AnswerSource = 'cache' | 'peer' | 'model';

/** What a streaming caller hears while a request runs; every callback is optional. */
export interface DispatchListener {
  /** A worker took the request (first ack): a streaming transport opens its stream here. */
  onStart?(): void;
  /**
   * The next piece of the answer, in order; `seq` counts from 0 within the current answer. `lane`: whether it
   * comes from a worker's lookup lane (a stored answer, or a running model call of the same question) or from
   * a model call made for this request (`model`: it waited in the work queue).
   */
  onChunk?(delta: string, seq: number, lane: AnswerLane): void;
  /** The chunks delivered so far are void: the answer starts again from `seq` 0. */
  onReset?(): void;
}

export interface DispatchOptions {
  /** Aborting it (the client went away) cancels the request on the worker too. */
  signal?: AbortSignal | undefined;
  listener?: DispatchListener | undefined;
}

/** A finished answer: the concatenated text and what the worker reported with it. */
export interface ChatOutcome {
  response: string;
  suggestions: string[];
  model: string;
  mode: Mode;
  task_type: TaskType;
  cached: boolean;
  source: AnswerSource;
  usage: Usage;
  cost_usd: number;
  /** Wall time at the gateway, from dispatch to the terminal frame, retries included. */
  latency_ms: number;
  /** Time the worker spent, as it reported. */
  worker_latency_ms: number;
  ttft_ms: number | undefined;
  worker_id: string | undefined;
  /** Delivery attempts used (1 when the first worker answered). */
  attempts: number;
}

/** The public answer shape (REST body, SSE `done`, WebSocket `response`). */
export const toChatResponse = (o: ChatOutcome, requestId: string): ChatResponse => ({
  response: o.response,
  suggestions: o.suggestions,
  model: o.model,
  mode: o.mode,
  task_type: o.task_type,
  cached: o.cached,
  request_id: requestId,
  usage: o.usage,
  cost_usd: o.cost_usd,
  latency_ms: o.latency_ms,
});
