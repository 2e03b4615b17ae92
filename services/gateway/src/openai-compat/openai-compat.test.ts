import { describe, expect, it } from 'vitest';
import { AppError, type WorkerPing } from '@actionedx/shared';
import type { Principal } from '../auth/principal.js';
import { bypassesCache, OPEN_MODE_USER, parseCompletionBody, toChatRequest } from './completion-request.js';
import { ModelCatalog } from './model-catalog.js';
import { OpenAiRequestError, toOpenAiError } from './openai-errors.js';

const limits = { requests_per_minute: 1, tokens_per_minute: 1, daily_budget_usd: 1, ws_connections: 1, ws_messages_per_second: 1 } as unknown as Principal['limits'];
const keyHolder: Principal = { user_id: 'ana', role: 'user', method: 'api_key', key_id: 'k1', limits };
const open: Principal = { user_id: undefined, role: 'user', method: 'open', limits };
const target = { taskType: 'strategy_audit' as const, principal: keyHolder, useCache: true };

const thrown = (f: () => unknown): unknown => {
  try {
    f();
  } catch (err) {
    return err;
  }
  throw new Error('did not throw');
};

describe('OpenAI chat completion → platform chat request', () => {
  it('answers the last user message, with earlier turns as history and system messages as context', () => {
    const body = parseCompletionBody({
      model: 'actionedx/strategy_audit',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'First?' },
        { role: 'assistant', content: [{ type: 'text', text: 'First.' }] },
        { role: 'developer', content: 'Use bullet points.' },
        { role: 'user', content: [{ type: 'text', text: 'Second ' }, { type: 'text', text: 'question?' }] },
      ],
      max_tokens: 100,
      max_completion_tokens: 50,
      temperature: 0.3,
      seed: 7,
    });
    expect(toChatRequest(body, target)).toMatchObject({
      user_id: 'ana',
      task_type: 'strategy_audit',
      message: 'Second question?',
      history: [
        { role: 'user', content: 'First?' },
        { role: 'assistant', content: 'First.' },
      ],
      context: { system: 'Be brief.\n\nUse bullet points.' },
      use_cache: true,
      max_tokens: 50,
      temperature: 0.3,
    });
  });

  it('acts for the authenticated user; in open mode `user` names the user', () => {
    const body = parseCompletionBody({ model: 'm', messages: [{ role: 'user', content: 'Hi' }], user: 'someone-else' });
    expect(toChatRequest(body, target).user_id).toBe('ana');
    expect(toChatRequest(body, { ...target, principal: open }).user_id).toBe('someone-else');
    const anonymous = parseCompletionBody({ model: 'm', messages: [{ role: 'user', content: 'Hi' }] });
    expect(toChatRequest(anonymous, { ...target, principal: open }).user_id).toBe(OPEN_MODE_USER);
    const bad = parseCompletionBody({ model: 'm', messages: [{ role: 'user', content: 'Hi' }], user: 'no spaces' });
    expect(thrown(() => toChatRequest(bad, { ...target, principal: open }))).toMatchObject({ status: 400, param: 'user' });
  });

  it.each([
    [{ model: 'm', messages: [{ role: 'user', content: 'x' }], n: 2 }, 'n', 'unsupported_parameter'],
    [{ model: 'm', messages: [] }, 'messages', 'invalid_value'],
    [{ messages: [{ role: 'user', content: 'x' }] }, 'model', 'invalid_value'],
    [{ model: 'm', messages: [{ role: 'user', content: 'x' }], temperature: 3 }, 'temperature', 'invalid_value'],
    [{ model: 'm', messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function' }] }, 'tools', 'unsupported_parameter'],
    [{ model: 'm', messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_object' } }, 'response_format', 'unsupported_parameter'],
  ])('refuses %j (param %s)', (input, param, code) => {
    const err = thrown(() => parseCompletionBody(input));
    expect(err).toBeInstanceOf(OpenAiRequestError);
    expect(err).toMatchObject({ status: 400, param, code });
  });

  it.each([
    [[{ role: 'assistant', content: 'x' }], 'messages.0.role'],
    [[{ role: 'tool', content: 'x', tool_call_id: 't' }, { role: 'user', content: 'y' }], 'messages.0.role'],
    [[{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }], 'messages.0.content'],
    [[{ role: 'user', content: '   ' }], 'messages'],
  ])('refuses the messages %j (param %s)', (messages, param) => {
    const body = parseCompletionBody({ model: 'm', messages });
    const err = thrown(() => toChatRequest(body, target));
    expect(toOpenAiError(err).status).toBe(400);
    expect(toOpenAiError(err).body.error.param).toBe(param);
  });

  it('bypasses the cache on x-cache-bypass: 1 or Cache-Control: no-cache, not otherwise', () => {
    expect(bypassesCache({ 'x-cache-bypass': '1' })).toBe(true);
    expect(bypassesCache({ 'cache-control': 'max-age=0, no-cache' })).toBe(true);
    expect(bypassesCache({ 'cache-control': 'no-store' })).toBe(true);
    expect(bypassesCache({ 'x-cache-bypass': '0' })).toBe(false);
    expect(bypassesCache({ 'cache-control': 'max-age=60' })).toBe(false);
    expect(bypassesCache({})).toBe(false);
  });
});

describe('OpenAI error shape', () => {
  it.each([
    [new AppError('unauthorized'), 401, 'invalid_request_error', 'invalid_api_key'],
    [new AppError('forbidden'), 403, 'permission_error', 'forbidden'],
    [new AppError('rate_limited'), 429, 'requests', 'rate_limit_exceeded'],
    [new AppError('token_rate_limited'), 429, 'tokens', 'rate_limit_exceeded'],
    [new AppError('budget_exceeded'), 429, 'insufficient_quota', 'insufficient_quota'],
    [new AppError('no_workers'), 503, 'server_error', 'no_workers'],
    [new AppError('not_found'), 404, 'invalid_request_error', 'unknown_url'],
    [new AppError('message_too_long', undefined, { details: { field: 'message' } }), 400, 'invalid_request_error', 'message_too_long'],
    [new Error('boom'), 500, 'server_error', 'internal'],
  ])('%s → %i %s %s', (err, status, type, code) => {
    const out = toOpenAiError(err, 'req-1');
    expect(out.status).toBe(status);
    expect(out.body.error).toMatchObject({ type, code, request_id: 'req-1' });
    expect(out.body.error.message).not.toMatch(/boom|at .*\.ts/);
  });

  it('names the OpenAI parameter of a platform field, and carries retry-after', () => {
    expect(toOpenAiError(new AppError('message_empty', undefined, { details: { field: 'message' } })).body.error.param).toBe('messages');
    expect(toOpenAiError(new AppError('overloaded', undefined, { retryAfterMs: 3000 })).retryAfterMs).toBe(3000);
  });
});

describe('ModelCatalog', () => {
  const routes: WorkerPing['routes'] = {
    strategy_audit: ['gpt-4o', 'backup'],
    realtime_tutoring: ['gpt-4o-mini'],
    collaboration: ['gpt-4o-mini'],
    framework_alignment: ['gpt-4o'],
    ethical_assessment: ['backup'],
  };
  const admin = (r: WorkerPing['routes'] | Error) => {
    let pings = 0;
    return {
      pings: () => pings,
      ping: async () => {
        pings++;
        if (r instanceof Error) throw r;
        return { worker: { worker_id: 'w', in_flight: 0, ...(r ? { routes: r } : {}) }, latency_ms: 1 };
      },
    };
  };

  it('resolves aliases without asking anyone, and models to the task type whose route starts with them', async () => {
    const a = admin(routes);
    const catalog = new ModelCatalog(a);
    await expect(catalog.resolve('actionedx/ethical_assessment')).resolves.toBe('ethical_assessment');
    expect(a.pings()).toBe(0);
    await expect(catalog.resolve('gpt-4o-mini')).resolves.toBe('realtime_tutoring');
    await expect(catalog.resolve('gpt-4o')).resolves.toBe('strategy_audit');
    await expect(catalog.resolve('backup')).resolves.toBe('ethical_assessment');
    expect(a.pings()).toBe(1);
  });

  it('answers model_not_found (404) for anything else', async () => {
    const catalog = new ModelCatalog(admin(routes));
    for (const model of ['actionedx/nope', 'gpt-5', 'actionedx/']) {
      await expect(catalog.resolve(model)).rejects.toMatchObject({ status: 404, code: 'model_not_found', param: 'model' });
    }
  });

  it('asks again once its copy of the routes is old', async () => {
    let now = 0;
    const a = admin(routes);
    const catalog = new ModelCatalog(a, () => now);
    await catalog.resolve('gpt-4o');
    now = 5_000;
    await catalog.resolve('gpt-4o');
    expect(a.pings()).toBe(1);
    now = 20_000;
    await catalog.resolve('gpt-4o');
    expect(a.pings()).toBe(2);
  });

  it('lists the aliases alone when no worker answers, and a model name then fails with the bus error', async () => {
    const catalog = new ModelCatalog(admin(new AppError('no_workers')));
    expect((await catalog.list()).map((m) => m.id)).toEqual([
      'actionedx/strategy_audit',
      'actionedx/realtime_tutoring',
      'actionedx/collaboration',
      'actionedx/framework_alignment',
      'actionedx/ethical_assessment',
    ]);
    await expect(catalog.resolve('gpt-4o')).rejects.toMatchObject({ code: 'no_workers' });
  });

  it('lists every model once with the task types that use it', async () => {
    const list = await new ModelCatalog(admin(routes)).list();
    expect(list.find((m) => m.id === 'backup')).toEqual({ id: 'backup', task_types: ['strategy_audit', 'ethical_assessment'] });
    expect(list.find((m) => m.id === 'actionedx/strategy_audit')).toMatchObject({ task_type: 'strategy_audit', models: ['gpt-4o', 'backup'] });
  });
});
