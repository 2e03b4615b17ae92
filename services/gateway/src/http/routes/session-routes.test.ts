import { afterEach, describe, expect, it } from 'vitest';
import { HistoryRequestSchema, SessionsRequestSchema, Subjects, decodeJson, encodeJson, type HistoryRequest } from '@actionedx/shared';
import { authHeaders, authRequiredConfig, startTestGateway, type TestGateway } from '@actionedx/testkit';
import { parseHistoryLimit } from './session-routes.js';

/** A stand-in orchestrator on the gateway's in-process bus: records each history request, answers one turn. */
function historyWorker(gw: TestGateway): HistoryRequest[] {
  const seen: HistoryRequest[] = [];
  gw.bus.subscribe(Subjects.conversationSessions, (msg) => {
    const q = decodeJson(SessionsRequestSchema, msg.data);
    seen.push({ ...q, session_id: '*' });
    gw.bus.publish(msg.reply!, encodeJson({ ok: true, data: { sessions: [{ session_id: 's-42', turns: 3, first_message: 'hi', last_at: '2026-01-01T00:00:00.000Z' }] } }));
  }, { queue: 'orchestrators' });
  gw.bus.subscribe(Subjects.conversationHistory, (msg) => {
    const q = decodeJson(HistoryRequestSchema, msg.data);
    seen.push(q);
    const turn = {
      request_id: 'r-1', mode: 'strategist', task_type: 'realtime_tutoring', message: 'hi', response: 'hello', model: 'gpt-4o',
      cached: true, usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 }, cost_usd: 0, latency_ms: 3, created_at: '2026-01-01T00:00:00.000Z',
    };
    gw.bus.publish(msg.reply!, encodeJson({ ok: true, data: { session_id: q.session_id, turns: [turn] } }));
  }, { queue: 'orchestrators' });
  return seen;
}

describe('GET /api/sessions/{id}/history', () => {
  let gw: TestGateway | undefined;
  afterEach(async () => {
    await gw?.close();
    gw = undefined;
  });

  it("asks the orchestrators for the authenticated caller's turns, never another user's", async () => {
    gw = await startTestGateway(authRequiredConfig());
    const seen = historyWorker(gw);
    const res = await fetch(`${gw.baseUrl}/api/sessions/s-42/history?limit=5`, { headers: await authHeaders('ana') });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { session_id: string; turns: Array<{ response: string; cached: boolean }> };
    expect(body).toMatchObject({ session_id: 's-42', turns: [{ response: 'hello', cached: true }] });
    expect(seen).toEqual([{ user_id: 'ana', session_id: 's-42', limit: 5 }]);

    const list = await fetch(`${gw.baseUrl}/api/sessions`, { headers: await authHeaders('ana') });
    expect(list.status).toBe(200);
    expect(await list.json()).toEqual({ sessions: [{ session_id: 's-42', turns: 3, first_message: 'hi', last_at: '2026-01-01T00:00:00.000Z' }] });
    expect(seen.at(-1)).toEqual({ user_id: 'ana', limit: 30, session_id: '*' });
    seen.pop();

    const other = await fetch(`${gw.baseUrl}/api/sessions/s-42/history?user_id=ben`, { headers: await authHeaders('ana') });
    expect(other.status).toBe(403);
    expect(((await other.json()) as { error: { code: string } }).error.code).toBe('user_mismatch');
    expect((await fetch(`${gw.baseUrl}/api/sessions/s-42/history`)).status).toBe(401);
    expect(seen).toHaveLength(1);
  });

  it('takes the named user in open mode, and refuses bad input before the bus', async () => {
    gw = await startTestGateway();
    const seen = historyWorker(gw);
    expect((await fetch(`${gw.baseUrl}/api/sessions/s-1/history?user_id=guest-1`)).status).toBe(200);
    expect(seen).toEqual([{ user_id: 'guest-1', session_id: 's-1', limit: 50 }]);
    for (const path of ['/api/sessions/s-1/history', '/api/sessions/s-1/history?user_id=guest-1&limit=0', '/api/sessions/s%201/history?user_id=guest-1', '/api/sessions?user_id=guest-1&limit=101', '/api/sessions']) {
      const res = await fetch(`${gw.baseUrl}${path}`);
      expect(res.status, path).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code, path).toBe('validation_failed');
    }
    expect((await fetch(`${gw.baseUrl}/api/sessions/s-1/history?user_id=guest-1`, { method: 'POST' })).status).toBe(405);
    expect(seen).toHaveLength(1);
  });

  it('answers 503 no_workers when no orchestrator listens', async () => {
    gw = await startTestGateway();
    const res = await fetch(`${gw.baseUrl}/api/sessions/s-1/history?user_id=guest-1`);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('no_workers');
  });
});

describe('parseHistoryLimit', () => {
  it('takes 1..200, 50 when absent', () => {
    expect(parseHistoryLimit(undefined)).toBe(50);
    expect(parseHistoryLimit('1')).toBe(1);
    expect(parseHistoryLimit('200')).toBe(200);
    for (const bad of ['0', '201', '-1', '1.5', 'ten', '', ['5', '6']]) expect(() => parseHistoryLimit(bad), String(bad)).toThrow(/limit/);
  });
});
