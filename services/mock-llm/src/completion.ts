import type { Request, RequestHandler, Response } from 'express';
import type { Logger } from '@actionedx/shared';
import { mergeBehaviour, parseHeaderOverrides, type MockBehaviour } from './behaviour.js';
import {
  ChatCompletionRequestSchema,
  countPromptTokens,
  maxTokensOf,
  wantsSuggestions,
  type ChatCompletionRequest,
} from './chat-request.js';
import { chooseFault, UnknownFaultError, type Fault } from './faults.js';
import type { MockLlmMetrics, Outcome } from './metrics.js';
import {
  chunk,
  completion,
  errorBody,
  invalidRequestBody,
  newIdentity,
  usageChunk,
  usageOf,
  type CompletionIdentity,
  type FinishReason,
  type Usage,
} from './openai-format.js';
import { SseWriter, writeFlushed } from './sse.js';
import { generateAnswer, tokenize } from './text.js';
import { delay, generationMs, pace } from './timing.js';

/** Counters a test reads through `GET /mock/stats`; `completions` and `streams` count requests as they arrive. */
export interface MockStats {
  completions: number;
  streams: number;
  client_disconnects: number;
  in_flight: number;
  /** Epoch ms of the latest completion requests' arrival (the last 50), e.g. to check a client's backoff. */
  arrivals: number[];
  /** Most completions answered at once since the start or the last `POST /mock/stats/reset-peak`. */
  peak_in_flight: number;
}

export interface CompletionDeps {
  behaviour: () => MockBehaviour;
  stats: MockStats;
  metrics: MockLlmMetrics;
  logger: Logger;
  /** The default fault (not one a header or model name asked for) was served to a request. */
  onDefaultFault?: () => void;
}

/** Everything decided about one request before a byte is sent. */
interface Plan {
  who: CompletionIdentity;
  stream: boolean;
  includeUsage: boolean;
  fault: Fault;
  ttftMs: number;
  tokensPerSecond: number;
  retryAfterS: number;
  /** The tokens to send, already capped by max_tokens (and halved by the faults that cut an answer short). */
  tokens: string[];
  finishReason: FinishReason;
  usage: Usage;
}

/** The request's connection as the handler sees it: aborted when it closes, cut on purpose by a fault. */
interface Exchange {
  signal: AbortSignal;
  /** True once the connection is gone, even when a failed write reports it before the close event runs. */
  gone: () => boolean;
  cut: () => void;
}

/** Faults that answer with half the tokens, so some text always arrives before the answer goes wrong. */
const CUT_SHORT: ReadonlySet<Fault> = new Set(['stall_mid', 'cut', 'truncate', 'length']);
const halfOf = (n: number) => Math.ceil(n / 2);

const badRequest = (res: Response, message: string) =>
  res.status(400).json(errorBody(message, 'invalid_request_error', 'invalid_request'));

function planOf(body: ChatCompletionRequest, behaviour: MockBehaviour, fault: Fault): Plan {
  const all = tokenize(
    generateAnswer(body.model, body.messages, {
      words: behaviour.completionTokens,
      suggestions: wantsSuggestions(body.messages),
    }),
  );
  const capped = all.slice(0, maxTokensOf(body) ?? all.length);
  const tokens = CUT_SHORT.has(fault) ? capped.slice(0, halfOf(capped.length)) : capped;
  return {
    who: newIdentity(body.model),
    stream: body.stream === true,
    includeUsage: body.stream_options?.include_usage === true && fault !== 'no_usage',
    fault,
    ttftMs: behaviour.ttftMs,
    tokensPerSecond: behaviour.tokensPerSecond,
    retryAfterS: behaviour.retryAfterS,
    tokens,
    finishReason: tokens.length < all.length ? 'length' : 'stop',
    usage: usageOf(countPromptTokens(body.messages), tokens.length),
  };
}

/** `POST /v1/chat/completions`: validates, decides timing and fault, then answers as JSON or as a stream. */
export function createCompletionHandler(deps: CompletionDeps): RequestHandler {
  return async (req, res) => {
    const body = ChatCompletionRequestSchema.safeParse(req.body);
    if (!body.success) return res.status(400).json(invalidRequestBody(body.error));
    const overrides = parseHeaderOverrides(req.headers);
    if (!overrides.success) return badRequest(res, 'x-mock-* timing headers must be non-negative numbers');
    const behaviour = mergeBehaviour(deps.behaviour(), overrides.data);
    let fault: Fault;
    try {
      fault = chooseFault({
        header: req.get('x-mock-fault'),
        model: body.data.model,
        fault: behaviour.fault,
        faultRate: behaviour.faultRate,
        random: Math.random,
      });
    } catch (err) {
      if (err instanceof UnknownFaultError) return badRequest(res, err.message);
      throw err;
    }
    const askedFor = req.get('x-mock-fault') !== undefined || body.data.model.startsWith('mock-fault-');
    if (fault !== 'none' && !askedFor) deps.onDefaultFault?.();

    const plan = planOf(body.data, behaviour, fault);
    const exchange = track(res, plan, deps, requestIdentity(req));
    try {
      await serve(res, plan, exchange);
    } catch (err) {
      // A client leaving mid-answer rejects timers and writes; that is an outcome, not an error.
      if (!exchange.gone()) throw err;
    }
  };
}

interface RequestIdentity {
  request_id?: string;
  traceparent?: string;
}

/** The caller's request id and trace context, so one request can be followed into the model's logs. */
function requestIdentity(req: Request): RequestIdentity {
  const id = req.get('x-request-id');
  const trace = req.get('traceparent');
  return { ...(id ? { request_id: id.slice(0, 64) } : {}), ...(trace ? { traceparent: trace.slice(0, 64) } : {}) };
}

/** Counts the request in now and out once when its response closes, telling who closed it. */
function track(res: Response, plan: Plan, { stats, metrics, logger }: CompletionDeps, identity: RequestIdentity): Exchange {
  const controller = new AbortController();
  let cutByUs = false;
  stats.completions++;
  stats.arrivals.push(Date.now());
  if (stats.arrivals.length > 50) stats.arrivals.shift();
  if (plan.stream) stats.streams++;
  stats.in_flight++;
  if (stats.in_flight > stats.peak_in_flight) stats.peak_in_flight = stats.in_flight;
  metrics.inFlight.inc();
  const started = performance.now();

  res.once('close', () => {
    controller.abort();
    stats.in_flight--;
    metrics.inFlight.dec();
    const clientLeft = !res.writableFinished && !cutByUs;
    if (clientLeft) {
      stats.client_disconnects++;
      metrics.clientDisconnects.inc();
    }
    const outcome: Outcome = plan.fault !== 'none' ? `fault_${plan.fault}` : clientLeft ? 'client_closed' : 'ok';
    metrics.completions.inc({ model: plan.who.model, stream: String(plan.stream), outcome });
    const ms = Math.round(performance.now() - started);
    logger.info({ ...identity, model: plan.who.model, stream: plan.stream, outcome, tokens: plan.tokens.length, ms }, 'completion');
  });

  return {
    signal: controller.signal,
    gone: () => controller.signal.aborted || res.destroyed || res.socket?.destroyed !== false,
    cut: () => {
      cutByUs = true;
      res.destroy();
    },
  };
}

async function serve(res: Response, plan: Plan, exchange: Exchange): Promise<void> {
  switch (plan.fault) {
    case 'rate_limit':
      res.set('retry-after', String(plan.retryAfterS)).status(429);
      res.json(errorBody('Rate limit reached (mock).', 'requests', 'rate_limit_exceeded'));
      return;
    case 'server_error':
      res.status(500).json(errorBody('The server had an error processing your request (mock).', 'server_error', null));
      return;
    default:
      return plan.stream ? streamAnswer(res, plan, exchange) : jsonAnswer(res, plan, exchange);
  }
}

async function streamAnswer(res: Response, plan: Plan, { signal, cut }: Exchange): Promise<void> {
  const { who, includeUsage } = plan;
  // A hung or stalled stream keeps its connection open until the client gives up; the close handler ends it.
  if (plan.fault === 'hang') return;
  await delay(plan.ttftMs, signal);
  const sse = new SseWriter(res, signal);
  sse.open();
  await sse.send([chunk(who, { role: 'assistant', content: '' }, null, includeUsage)]);
  if (plan.fault === 'stall') return;

  for await (const batch of pace(plan.tokens, plan.tokensPerSecond, signal)) {
    await sse.send(batch.map((content) => chunk(who, { content }, null, includeUsage)));
  }
  if (plan.fault === 'stall_mid') return;
  if (plan.fault === 'cut') return cut();
  if (plan.fault === 'truncate') {
    res.end();
    return;
  }
  await sse.send([
    chunk(who, {}, plan.finishReason, includeUsage),
    ...(includeUsage ? [usageChunk(who, plan.usage)] : []),
  ]);
  sse.done();
}

async function jsonAnswer(res: Response, plan: Plan, { signal, cut }: Exchange): Promise<void> {
  if (plan.fault === 'hang' || plan.fault === 'stall' || plan.fault === 'stall_mid') return;
  await delay(plan.ttftMs + generationMs(plan.tokens.length, plan.tokensPerSecond), signal);
  const answer = completion(plan.who, plan.tokens.join(''), plan.finishReason, plan.usage);
  if (plan.fault === 'none' || plan.fault === 'length') {
    res.json(answer);
    return;
  }
  if (plan.fault === 'no_usage') {
    const { usage: _usage, ...withoutUsage } = answer;
    res.json(withoutUsage);
    return;
  }
  // cut and truncate send half of the JSON: the body can never parse, whether the socket dies or ends cleanly.
  const text = JSON.stringify(answer);
  res.writeHead(200, { 'content-type': 'application/json' });
  await writeFlushed(res, text.slice(0, halfOf(text.length)), signal);
  if (plan.fault === 'cut') cut();
  else res.end();
}
