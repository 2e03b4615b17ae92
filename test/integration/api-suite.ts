import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { describe, expect, it } from 'vitest';
import { SEED_CLIENT_USER, adminHeaders, authHeaders, getJson, mintToken, postJson, postSse, runSeedClient, WsClient } from '@actionedx/testkit';

export interface ApiTarget {
  /** http://127.0.0.1:PORT */
  url: string;
  /** ws://127.0.0.1:PORT */
  wsUrl: string;
  /** The target requires authentication (testkit's TEST_AUTH): every call carries a token or the admin key. */
  auth?: boolean;
}

const unique = (what: string) => `${what} ${randomUUID()}`;

/**
 * The public API as a client sees it. Runs against the distributed stack (separate processes on real
 * NATS and Redis) and against the embedded mode: both must behave the same.
 */
export function defineApiSuite(target: () => ApiTarget): void {
  /** A call as `user`: a bearer token when the target wants one. */
  const as = async (user: string): Promise<Record<string, string>> => (target().auth ? authHeaders(user) : {});
  /** A call as the administrator. */
  const admin = (): Record<string, string> => (target().auth ? adminHeaders() : {});
  /** `&access_token=` for a socket of `user` (browsers cannot set headers on a WebSocket). */
  const tokenQuery = async (user: string): Promise<string> => (target().auth ? `&access_token=${await mintToken(user)}` : '');

  describe('REST chat', () => {
    it('answers with the seed shape and echoes the request id', async () => {
      const rid = `test-${randomUUID()}`;
      const res = await postJson(
        `${target().url}/api/assistant/chat`,
        { user_id: 'user-1', message: unique('Help me with a 9-Pillar audit'), mode: 'strategist' },
        { 'x-request-id': rid, ...(await as('user-1')) },
      );
      expect(res.status).toBe(200);
      expect(res.headers.get('x-request-id')).toBe(rid);
      expect(res.headers.get('traceparent')).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
      const b = res.body;
      expect(b).toMatchObject({ mode: 'strategist', task_type: 'realtime_tutoring', cached: false, request_id: rid });
      expect(typeof b.response).toBe('string');
      expect(b.response.length).toBeGreaterThan(20);
      expect(Array.isArray(b.suggestions)).toBe(true);
      expect(b.suggestions.length).toBeGreaterThan(0);
      expect(typeof b.model).toBe('string');
      expect(b.usage.total_tokens).toBe(b.usage.prompt_tokens + b.usage.completion_tokens);
      expect(b.usage.completion_tokens).toBeGreaterThan(0);
      expect(typeof b.cost_usd).toBe('number');
      expect(b.latency_ms).toBeGreaterThanOrEqual(0);
      // Every chat answer says where its caller stands (draft-ietf-httpapi-ratelimit-headers-10).
      expect(res.headers.get('ratelimit-policy')).toMatch(/^"requests";q=\d+;w=60, "tokens";q=\d+;qu="tokens";w=60, "daily_spend";q=\d+;qu="usd_micros";w=86400$/);
      expect(res.headers.get('ratelimit')).toMatch(/^"requests";r=\d+;t=\d+/);
    });

    it('serves a repeated request from the cache with the same answer, and bypasses it on use_cache:false', async () => {
      const body = { user_id: 'user-2', message: unique('What is a tri-core loop?') };
      const h = await as('user-2');
      const first = await postJson(`${target().url}/api/assistant/chat`, body, h);
      const second = await postJson(`${target().url}/api/assistant/chat`, body, h);
      expect(first.body.cached).toBe(false);
      expect(second.body.cached).toBe(true);
      expect(second.body.response).toBe(first.body.response);
      expect(second.body.suggestions).toEqual(first.body.suggestions);
      expect(second.body.cost_usd).toBe(0);
      const bypass = await postJson(`${target().url}/api/assistant/chat`, { ...body, use_cache: false }, h);
      expect(bypass.body.cached).toBe(false);
      expect(bypass.body.response).toBe(first.body.response);
    });

    it('accepts a message of exactly 16,000 characters, the documented limit', async () => {
      const message = `${randomUUID()} `.padEnd(16_000, 'x');
      expect(message).toHaveLength(16_000);
      const res = await postJson(`${target().url}/api/assistant/chat`, { user_id: 'user-limit', message }, await as('user-limit'));
      expect(res.status).toBe(200);
      expect(res.body.cached).toBe(false);
    });

    it('answers each mode and task type', async () => {
      for (const [mode, task_type] of [
        ['ally', 'collaboration'],
        ['oracle', 'ethical_assessment'],
        ['strategist', 'framework_alignment'],
      ] as const) {
        const res = await postJson(`${target().url}/api/assistant/chat`, { user_id: 'u3', message: unique('hi'), mode, task_type }, await as('u3'));
        expect(res.status).toBe(200);
        expect(res.body).toMatchObject({ mode, task_type });
      }
    });

    it.each([
      ['/api/strategy-audit', 'strategy_audit'],
      ['/api/tri-core-loop', 'framework_alignment'],
      ['/api/house-of-hearts', 'ethical_assessment'],
    ])('serves the task endpoint %s as %s, cached on repeat', async (path, taskType) => {
      const body = { user_id: 'user-4', message: unique('Assess our plan') };
      const h = await as('user-4');
      const first = await postJson(`${target().url}${path}`, body, h);
      expect(first.status).toBe(200);
      expect(first.body.task_type).toBe(taskType);
      const again = await postJson(`${target().url}${path}`, body, h);
      expect(again.body.cached).toBe(true);
      expect(again.body.response).toBe(first.body.response);
    });
  });

  describe('Server-Sent Events', () => {
    it('streams start, chunks in seq order, and done with the whole answer', async () => {
      const { status, events } = await postSse(
        `${target().url}/api/assistant/chat`,
        { user_id: 'user-5', message: unique('Explain spaced repetition') },
        { headers: await as('user-5') },
      );
      expect(status).toBe(200);
      expect(events[0]!.event).toBe('start');
      expect(events.at(-1)!.event).toBe('done');
      const chunks = events.filter((e) => e.event === 'chunk');
      expect(chunks.length).toBeGreaterThan(0);
      expect(chunks.map((c) => c.data.seq)).toEqual(chunks.map((_, i) => i));
      const done = events.at(-1)!.data;
      expect(chunks.map((c) => c.data.content).join('')).toBe(done.response);
      expect(done.cached).toBe(false);
    });

    it('streams a cached answer byte-equal to the original', async () => {
      const body = { user_id: 'user-6', message: unique('Summarise the 9 pillars') };
      const headers = await as('user-6');
      const live = await postSse(`${target().url}/api/assistant/chat`, body, { headers });
      const hit = await postSse(`${target().url}/api/assistant/chat`, body, { headers });
      const text = (ev: typeof live.events) => ev.filter((e) => e.event === 'chunk').map((e) => e.data.content).join('');
      expect(hit.events.at(-1)!.data.cached).toBe(true);
      expect(Buffer.from(text(hit.events))).toEqual(Buffer.from(text(live.events)));
      expect(hit.events.map((e) => e.event)).toEqual(['start', ...hit.events.slice(1, -1).map(() => 'chunk'), 'done']);
    });
  });

  describe('WebSocket', () => {
    it("runs the seed's example client unchanged (with a token on its URL when authentication is on)", async () => {
      // The seed's client, byte for byte but for the host (and `&access_token=`); `ws` stands in for the browser's WebSocket.
      const accessToken = target().auth ? await mintToken(SEED_CLIENT_USER) : undefined;
      const run = runSeedClient(target().wsUrl.replace(/^ws:\/\//, ''), WebSocket, 15_000, accessToken === undefined ? {} : { accessToken });
      try {
        await run.finished;
      } finally {
        run.close();
      }
      const first = run.logs.map((args) => args[0]);
      expect(run.errors).toEqual([]);
      expect(first[0]).toBe('Connected!');
      expect(first).toContain('Welcome:');
      expect(first).toContain('AI is thinking...');
      expect(first).toContain('Chunk:');
      expect(first).toContain('Response:');
      expect(first.at(-1)).toBe('Suggestions:');
      expect((run.logs.at(-1)![1] as string[]).length).toBeGreaterThan(0);
    });

    it('streams chunks in seq order and ends with the whole response', async () => {
      const ws = await WsClient.open(`${target().wsUrl}/ws/assistant/s-${randomUUID().slice(0, 8)}?user_id=u7${await tokenQuery('u7')}`);
      await ws.next((m) => m.type === 'connected');
      ws.send({ message: unique('What should I learn next?'), mode: 'ally' });
      const response = await ws.next((m) => m.type === 'response');
      const types = ws.messages.map((m) => m.type);
      expect(types.indexOf('stream_start')).toBeLessThan(types.indexOf('stream_chunk'));
      expect(types.lastIndexOf('stream_chunk')).toBeLessThan(types.indexOf('stream_end'));
      expect(types.indexOf('stream_end')).toBeLessThan(types.indexOf('response'));
      const chunks = ws.messages.filter((m) => m.type === 'stream_chunk');
      expect(chunks.map((c) => c.seq)).toEqual(chunks.map((_, i) => i));
      expect(chunks.map((c) => c.content).join('')).toBe(response.response);
      expect(response).toMatchObject({ mode: 'ally', cached: false });
      expect(response.suggestions.length).toBeGreaterThan(0);
      ws.close();
    });

    it('answers bad frames with error frames and stays usable', async () => {
      const ws = await WsClient.open(`${target().wsUrl}/ws/assistant/s-${randomUUID().slice(0, 8)}?user_id=u8${await tokenQuery('u8')}`);
      await ws.next((m) => m.type === 'connected');
      let from = ws.messages.length;
      ws.send('this is not json');
      expect(await ws.next((m) => m.type === 'error', 5000, from)).toMatchObject({ code: 'invalid_json' });
      from = ws.messages.length;
      ws.ws.send(Buffer.from([1, 2, 3]), { binary: true });
      expect(await ws.next((m) => m.type === 'error', 5000, from)).toMatchObject({ code: 'binary_frame' });
      from = ws.messages.length;
      ws.send({ message: 'hi', mode: 'wizard' });
      expect(await ws.next((m) => m.type === 'error', 5000, from)).toMatchObject({ code: 'unknown_mode' });
      from = ws.messages.length;
      ws.send({ message: '   ' });
      expect(await ws.next((m) => m.type === 'error', 5000, from)).toMatchObject({ code: 'message_empty' });
      from = ws.messages.length;
      ws.send({ message: unique('still there?') });
      expect(await ws.next((m) => m.type === 'response', 10_000, from)).toMatchObject({ cached: false });
      ws.close();
    });
  });

  describe('bad input', () => {
    const chat = () => `${target().url}/api/assistant/chat`;
    it.each([
      ['invalid JSON', '{"user_id": "u", "message": ', 400, 'invalid_json'],
      ['a missing message', { user_id: 'u' }, 400, 'validation_failed'],
      ['a wrongly typed field', { user_id: 'u', message: 42 }, 400, 'validation_failed'],
      ['an unknown mode', { user_id: 'u', message: 'hi', mode: 'wizard' }, 400, 'unknown_mode'],
      ['an unknown task type', { user_id: 'u', message: 'hi', task_type: 'poetry' }, 400, 'unknown_task_type'],
      ['an empty message', { user_id: 'u', message: '' }, 400, 'message_empty'],
      ['a message over the limit', { user_id: 'u', message: 'x'.repeat(16_001) }, 400, 'message_too_long'],
      ['a body over the size limit', { user_id: 'u', message: 'x', context: { pad: 'y'.repeat(70_000) } }, 413, 'payload_too_large'],
    ])('refuses %s', async (_what, body, status, code) => {
      const res = await postJson(chat(), body, await as('u'));
      expect(res.status).toBe(status);
      expect(res.body.error.code).toBe(code);
      expect(typeof res.body.error.message).toBe('string');
    });

    it('refuses a body that is not JSON by type', async () => {
      const res = await fetch(chat(), { method: 'POST', headers: { 'content-type': 'text/plain', ...(await as('u')) }, body: 'hello' });
      expect(res.status).toBe(415);
      expect((await res.json()).error.code).toBe('unsupported_media_type');
    });

    it('answers an unknown route with a JSON 404', async () => {
      const res = await getJson(`${target().url}/api/nope`, await as('u'));
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('not_found');
    });

    it('keeps serving other clients while bad input arrives', async () => {
      const [hu, h9] = [await as('u'), await as('u9')];
      const bad = Array.from({ length: 20 }, () => postJson(chat(), '{broken', hu));
      const good = postJson(chat(), { user_id: 'u9', message: unique('fine') }, h9);
      const results = await Promise.all([...bad, good]);
      expect(results.slice(0, 20).every((r) => r.status === 400)).toBe(true);
      expect(results[20]!.status).toBe(200);
    });
  });

  describe('cache administration', () => {
    it('reports stats, invalidates by pattern and by task type, refuses bad patterns (an administrator)', async () => {
      const body = { user_id: 'user-10', message: unique('Plan a workshop'), task_type: 'collaboration' };
      const h = await as('user-10');
      const ask = async () => (await postJson(`${target().url}/api/assistant/chat`, body, h)).body;
      await ask();
      expect((await ask()).cached).toBe(true);

      const stats = await getJson(`${target().url}/api/cache/stats`, admin());
      expect(stats.status).toBe(200);
      expect(stats.body.hits).toBeGreaterThan(0);
      expect(stats.body.hit_rate).toBeGreaterThan(0);
      expect(stats.body.keys_by_task_type.collaboration).toBeGreaterThan(0);

      const byType = await postJson(`${target().url}/api/cache/invalidate?task_type=collaboration`, {}, admin());
      expect(byType.status).toBe(200);
      expect(byType.body.deleted).toBeGreaterThan(0);
      expect((await ask()).cached).toBe(false);

      const byPattern = await postJson(`${target().url}/api/cache/invalidate?pattern=ai_cache:collaboration:*`, {}, admin());
      expect(byPattern.status).toBe(200);
      expect(byPattern.body.deleted).toBeGreaterThan(0);
      expect((await ask()).cached).toBe(false);

      // The seed's own call: every answer of the cache.
      const every = await postJson(`${target().url}/api/cache/invalidate?pattern=*`, {}, admin());
      expect(every.status).toBe(200);
      expect(every.body).toEqual({ pattern: 'ai_cache:*', deleted: expect.any(Number) });
      expect(every.body.deleted).toBeGreaterThan(0);
      expect((await ask()).cached).toBe(false);

      for (const bad of ['**', 'session:*', 'ai_cache:a.b', 'ai_cache:[a-z]*', 'ai_cache:\\x']) {
        const res = await postJson(`${target().url}/api/cache/invalidate?pattern=${encodeURIComponent(bad)}`, {}, admin());
        expect(res.status, bad).toBe(400);
        expect(res.body.error.code).toBe('invalid_pattern');
      }
      const health = await getJson(`${target().url}/api/cache/health`, admin());
      expect(health.status).toBe(200);
      expect(['healthy', 'memory']).toContain(health.body.status);
    });
  });

  describe('the door (when authentication is on)', () => {
    it('refuses chat, the socket and the admin routes without credentials, and the admin routes to a user', async () => {
      if (!target().auth) return;
      const chat = await postJson(`${target().url}/api/assistant/chat`, { user_id: 'test', message: 'Hello' });
      expect(chat.status).toBe(401);
      expect(chat.body.error.code).toBe('unauthorized');
      await expect(WsClient.open(`${target().wsUrl}/ws/assistant/s-${randomUUID().slice(0, 8)}?user_id=u`)).rejects.toThrow(/401/);
      const asUser = await as('test');
      for (const path of ['/api/cache/stats', '/api/metrics', '/api/admin/keys']) {
        expect((await getJson(`${target().url}${path}`)).status, path).toBe(401);
        expect((await getJson(`${target().url}${path}`, asUser)).status, path).toBe(403);
      }
      const claim = await postJson(`${target().url}/api/assistant/chat`, { user_id: 'someone-else', message: 'Hello' }, asUser);
      expect(claim.status).toBe(403);
      expect(claim.body.error.code).toBe('user_mismatch');
    });
  });

  describe('health and metrics', () => {
    it('reports health, liveness and readiness', async () => {
      const h = await getJson(`${target().url}/api/health`);
      expect(h.status).toBe(200);
      expect(h.body.status).toBe('healthy');
      // Public health says whether workers answer, never which (their ids carry host names).
      expect(h.body.dependencies.orchestrators).toMatchObject({ status: 'reachable', workers_reachable: true });
      expect(h.body.dependencies.orchestrators.worker_id).toBeUndefined();
      expect((await fetch(`${target().url}/healthz`)).status).toBe(200);
      expect((await fetch(`${target().url}/readyz`)).status).toBe(200);
      const ws = await getJson(`${target().url}/api/websocket/stats`, await as('u'));
      expect(ws.status).toBe(200);
      expect(typeof ws.body.active_connections).toBe('number');
    });

    it('serves its OpenAPI document', async () => {
      const res = await getJson(`${target().url}/api/openapi.json`);
      expect(res.status).toBe(200);
      expect(res.body.openapi).toBe('3.1.0');
      expect(res.body.paths['/api/assistant/chat'].post).toBeDefined();
    });

    it('exposes Prometheus metrics', async () => {
      await postJson(`${target().url}/api/assistant/chat`, { user_id: 'u11', message: unique('count me') }, await as('u11'));
      const res = await fetch(`${target().url}/api/metrics`, { headers: admin() });
      expect(res.status).toBe(200);
      const text = await res.text();
      for (const name of ['websocket_active_connections', 'websocket_messages_total', 'http_requests_total']) {
        expect(text).toContain(name);
      }
    });
  });
}
