import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { Subjects, type CacheStats } from '@actionedx/shared';
import {
  FakeAdminEndpoint,
  FakeWorker,
  TestSocket,
  adminHeaders,
  answerWith,
  authHeaders,
  authRequiredConfig,
  bearer,
  createApiKey,
  metricValue,
  mintToken,
  sleep,
  startTestGateway,
  type TestGateway,
} from '@actionedx/testkit';

let gw: TestGateway;
let workers: FakeWorker[];
let sockets: TestSocket[];
let endpoints: FakeAdminEndpoint[];

const stats: CacheStats = {
  status: 'connected',
  backend: 'redis',
  hits: 1,
  misses: 1,
  coalesced: 0,
  hit_rate: 0.5,
  total_keys: 1,
  keys_by_task_type: {},
  memory_used_bytes: 1,
};

beforeEach(async () => {
  gw = await startTestGateway({ ...authRequiredConfig({ CORS_ORIGINS: 'https://app.example' }) });
  workers = [new FakeWorker(gw.bus, { script: answerWith(['hello ', 'there']) })];
  sockets = [];
  endpoints = [];
});

afterEach(async () => {
  for (const s of sockets) await s.close();
  for (const w of workers) w.stop();
  for (const e of endpoints) e.stop();
  await gw.close();
});

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${gw.baseUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
const get = (path: string, headers: Record<string, string> = {}) => fetch(`${gw.baseUrl}${path}`, { headers });
const code = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;

const openSocket = async (path: string, headers: Record<string, string> = {}) => {
  const s = await TestSocket.open(gw.wsUrl + path, headers);
  sockets.push(s);
  return s;
};
const upgrade = (path: string, headers: Record<string, string> = {}) =>
  new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
    const ws = new WebSocket(gw.wsUrl + path, { headers });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += String(d)));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    ws.once('open', () => {
      ws.close();
      reject(new Error('the upgrade succeeded'));
    });
    ws.once('error', () => {});
  });

describe('authentication on REST (AUTH_MODE=required)', () => {
  it('refuses a call without credentials (401, WWW-Authenticate) and a junk or forged one, counting each reason', async () => {
    const none = await post('/api/assistant/chat', { user_id: 'alice', message: 'hi' });
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="actionedx"');
    expect(await code(none)).toBe('unauthorized');

    const junk = await post('/api/assistant/chat', { message: 'hi' }, bearer('junk'));
    expect(junk.status).toBe(401);
    expect(junk.headers.get('www-authenticate')).toBe('Bearer realm="actionedx", error="invalid_token"');

    const forged = await post('/api/assistant/chat', { message: 'hi' }, bearer(await mintToken('alice', { secret: 'x'.repeat(40) })));
    expect(forged.status).toBe(401);
    const expired = await post('/api/assistant/chat', { message: 'hi' }, await authHeaders('alice', { ttlS: -120 }));
    expect(expired.status).toBe(401);
    expect(((await expired.json()) as { error: { message: string } }).error.message).toBe('The token has expired.');
    expect(workers[0]!.jobs).toHaveLength(0);
    expect(await metricValue(gw.registry, 'gateway_auth_failures_total', { reason: 'missing', transport: 'http' })).toBe(1);
    expect(await metricValue(gw.registry, 'gateway_auth_failures_total', { reason: 'malformed', transport: 'http' })).toBe(1);
    expect(await metricValue(gw.registry, 'gateway_auth_failures_total', { reason: 'bad_signature', transport: 'http' })).toBe(1);
    expect(await metricValue(gw.registry, 'gateway_auth_failures_total', { reason: 'expired', transport: 'http' })).toBe(1);
  });

  it('takes user_id from the token: filled in when absent, refused (403 user_mismatch) when it names someone else', async () => {
    const alice = await authHeaders('alice');
    const ok = await post('/api/assistant/chat', { message: 'hi' }, alice);
    expect(ok.status).toBe(200);
    expect(workers[0]!.jobs[0]!.job.request.user_id).toBe('alice');
    expect((await post('/api/assistant/chat', { user_id: 'alice', message: 'hi' }, alice)).status).toBe(200);
    const other = await post('/api/assistant/chat', { user_id: 'bob', message: 'hi' }, alice);
    expect(other.status).toBe(403);
    expect(await code(other)).toBe('user_mismatch');
    const task = await post('/api/strategy-audit', { user_id: 'bob', organization: 'Acme' }, alice);
    expect(task.status).toBe(403);
    expect((await post('/api/strategy-audit', { organization: 'Acme' }, alice)).status).toBe(200);
    expect(workers[0]!.jobs.map((j) => j.job.request.user_id)).toEqual(['alice', 'alice', 'alice']);
  });

  it('streams SSE with a token too', async () => {
    const res = await fetch(`${gw.baseUrl}/api/assistant/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...(await authHeaders('alice')) },
      body: JSON.stringify({ message: 'stream' }),
    });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('event: done');
  });

  it('leaves health and the API documents public', async () => {
    for (const path of ['/api/health', '/healthz', '/readyz', '/api/openapi.json', '/api/asyncapi.json']) {
      expect([200, 503], path).toContain((await get(path)).status);
    }
    expect((await get('/api/nope')).status).toBe(401);
    expect((await get('/api/nope', await authHeaders('alice'))).status).toBe(404);
  });

  it('puts security headers on every answer, and no x-powered-by', async () => {
    for (const res of [await get('/healthz'), await get('/api/nope'), await post('/api/assistant/chat', { message: 'hi' }, await authHeaders('alice'))]) {
      expect(res.headers.get('x-powered-by')).toBeNull();
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('content-security-policy')).toBe("default-src 'none';frame-ancestors 'none'");
      expect(res.headers.get('x-frame-options')).toBe('SAMEORIGIN');
      expect(res.headers.get('strict-transport-security')).toMatch(/max-age=/);
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      expect(res.headers.get('cache-control')).toBe('no-store');
    }
  });
});

describe('API keys', () => {
  it('are created by an admin, used by their user, listed without secrets, and revoked', async () => {
    const created = await createApiKey(gw.baseUrl, { user_id: 'carol', name: 'ci' });
    expect(created.key).toMatch(/^axk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    expect(created).toMatchObject({ user_id: 'carol', role: 'user', revoked_at: null });

    const used = await post('/api/assistant/chat', { message: 'hi' }, bearer(created.key));
    expect(used.status).toBe(200);
    expect(workers[0]!.jobs.at(-1)!.job.request.user_id).toBe('carol');
    expect((await post('/api/assistant/chat', { message: 'hi' }, { 'x-api-key': created.key })).status).toBe(200);

    const list = await get('/api/admin/keys?user_id=carol', adminHeaders());
    const text = await list.text();
    expect(list.status).toBe(200);
    expect(JSON.parse(text).keys).toEqual([expect.objectContaining({ id: created.id, user_id: 'carol', name: 'ci' })]);
    // The secret is all that follows `axk_<id>_` (base64url: it may hold `_` itself).
    expect(text).not.toContain(created.key.slice(`axk_${created.id}_`.length));
    expect(text).not.toContain('secret_sha256');

    const wrongSecret = `${created.key.slice(0, -4)}AAAA`;
    expect((await post('/api/assistant/chat', { message: 'hi' }, bearer(wrongSecret))).status).toBe(401);

    const revoked = await fetch(`${gw.baseUrl}/api/admin/keys/${created.id}`, { method: 'DELETE', headers: adminHeaders() });
    expect(revoked.status).toBe(200);
    expect(((await revoked.json()) as { revoked_at: string }).revoked_at).toEqual(expect.any(String));
    expect((await post('/api/assistant/chat', { message: 'hi' }, bearer(created.key))).status).toBe(401);
    expect(await metricValue(gw.registry, 'gateway_auth_failures_total', { reason: 'revoked', transport: 'http' })).toBe(1);
    expect((await fetch(`${gw.baseUrl}/api/admin/keys/0000000000000000`, { method: 'DELETE', headers: adminHeaders() })).status).toBe(404);
  });

  it('refuses bad key specs', async () => {
    const bad = await post('/api/admin/keys', { user_id: 'bad user' }, adminHeaders());
    expect(bad.status).toBe(400);
    const extra = await post('/api/admin/keys', { user_id: 'u', role: 'root' }, adminHeaders());
    expect(extra.status).toBe(400);
    const limits = await post('/api/admin/keys', { user_id: 'u', limits: { requests_per_minute: -1 } }, adminHeaders());
    expect(limits.status).toBe(400);
  });
});

describe('the admin surface', () => {
  it('refuses users (403 forbidden) and anonymous callers (401), and serves admins (bootstrap key, admin JWT, admin API key)', async () => {
    endpoints.push(new FakeAdminEndpoint(gw.bus, Subjects.cacheStats, () => ({ ok: true, data: stats })));
    const invalidate = new FakeAdminEndpoint(gw.bus, Subjects.cacheInvalidate, () => ({ ok: true, data: { pattern: 'ai_cache:*', deleted: 3 } }));
    endpoints.push(invalidate);
    const user = await authHeaders('alice');
    const routes: Array<[string, string]> = [
      ['GET', '/api/cache/stats'],
      ['GET', '/api/cache/health'],
      ['POST', '/api/cache/invalidate?pattern=*'],
      ['GET', '/api/metrics'],
      ['GET', '/api/admin/keys'],
      ['POST', '/api/admin/keys'],
    ];
    for (const [method, path] of routes) {
      const asUser = await fetch(`${gw.baseUrl}${path}`, { method, headers: { 'content-type': 'application/json', ...user }, body: method === 'POST' ? '{}' : undefined });
      expect(asUser.status, `${method} ${path}`).toBe(403);
      expect(await code(asUser)).toBe('forbidden');
      const anonymous = await fetch(`${gw.baseUrl}${path}`, { method });
      expect(anonymous.status, `${method} ${path}`).toBe(401);
    }
    // A junk bearer token no longer empties the cache.
    expect((await post('/api/cache/invalidate?pattern=*', {}, bearer('junk'))).status).toBe(401);
    expect(invalidate.requests).toHaveLength(0);

    const adminJwt = await authHeaders('ops-1', { role: 'admin' });
    const adminKey = await createApiKey(gw.baseUrl, { user_id: 'ops-2', role: 'admin' });
    for (const headers of [adminHeaders(), adminJwt, bearer(adminKey.key)]) {
      expect((await get('/api/cache/stats', headers)).status).toBe(200);
      expect((await get('/api/metrics', headers)).status).toBe(200);
    }
    expect((await post('/api/cache/invalidate?pattern=*', {}, adminJwt)).status).toBe(200);
    expect(invalidate.requests).toHaveLength(1);
  });

  it('lists WebSocket sessions (with their users) to admins only', async () => {
    await openSocket('/ws/assistant/s-admin-view', await authHeaders('alice'));
    const asUser = (await (await get('/api/websocket/stats', await authHeaders('bob'))).json()) as { active_connections: number; sessions: unknown[] };
    expect(asUser.active_connections).toBe(1);
    expect(asUser.sessions).toEqual([]);
    const asAdmin = (await (await get('/api/websocket/stats', adminHeaders())).json()) as { sessions: Array<{ user_id: string }> };
    expect(asAdmin.sessions).toEqual([expect.objectContaining({ session_id: 's-admin-view', user_id: 'alice' })]);
    expect((await get('/api/websocket/stats')).status).toBe(401);
  });
});

describe('authentication on the WebSocket upgrade', () => {
  it('refuses an upgrade without a valid credential, before accepting the socket', async () => {
    const none = await upgrade('/ws/assistant/s1');
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="actionedx"');
    expect(JSON.parse(none.body).error.code).toBe('unauthorized');
    expect((await upgrade(`/ws/assistant/s1?access_token=junk`)).status).toBe(401);
    expect((await upgrade('/ws/assistant/s1', bearer(await mintToken('alice', { ttlS: -300 })))).status).toBe(401);
    expect(await metricValue(gw.registry, 'gateway_auth_failures_total', { reason: 'missing', transport: 'ws' })).toBe(1);
    expect(await metricValue(gw.registry, 'websocket_active_connections')).toBe(0);
  });

  it('takes the token from Authorization or ?access_token=, and runs turns as its user', async () => {
    const byHeader = await openSocket('/ws/assistant/s-h', await authHeaders('alice'));
    const byQuery = await openSocket(`/ws/assistant/s-q?user_id=alice&access_token=${await mintToken('alice')}`);
    for (const ws of [byHeader, byQuery]) {
      ws.send({ message: 'Help me with 9-Pillar audit', mode: 'strategist' });
      expect((await ws.until('response')).at(-1)).toMatchObject({ response: 'hello there' });
    }
    expect(workers[0]!.jobs.map((j) => j.job.request.user_id)).toEqual(['alice', 'alice']);
  });

  it('refuses a socket whose ?user_id= disagrees with the token, and a turn that names another user', async () => {
    const mismatch = await upgrade('/ws/assistant/s-m?user_id=bob', await authHeaders('alice'));
    expect(mismatch.status).toBe(403);
    expect(JSON.parse(mismatch.body).error.code).toBe('user_mismatch');
    const ws = await openSocket('/ws/assistant/s-m', await authHeaders('alice'));
    ws.send({ user_id: 'bob', message: 'as bob' });
    expect(await ws.next()).toMatchObject({ type: 'error', code: 'user_mismatch' });
    expect(workers[0]!.jobs).toHaveLength(0);
  });

  it("gives another user's session a 404, as if it did not exist", async () => {
    const alice = await openSocket('/ws/assistant/s-owned', await authHeaders('alice'));
    alice.send({ message: 'mine' });
    await alice.until('response');
    const bob = await upgrade('/ws/assistant/s-owned', await authHeaders('bob'));
    expect(bob.status).toBe(404);
    expect(JSON.parse(bob.body).error.code).toBe('not_found');
    await alice.close();
    expect((await upgrade('/ws/assistant/s-owned', await authHeaders('bob'))).status).toBe(404);
    const again = await openSocket('/ws/assistant/s-owned', await authHeaders('alice'));
    expect(again.received[0]).toMatchObject({ type: 'connected', session_id: 's-owned' });
  });

  it('refuses an Origin outside CORS_ORIGINS (403), accepts a listed one and a client without Origin', async () => {
    const token = await mintToken('alice');
    const evil = await upgrade(`/ws/assistant/s-o?access_token=${token}`, { origin: 'http://evil.example' });
    expect(evil.status).toBe(403);
    expect(JSON.parse(evil.body).error.code).toBe('origin_not_allowed');
    await openSocket(`/ws/assistant/s-o?access_token=${token}`, { origin: 'https://app.example' });
    await openSocket(`/ws/assistant/s-o2?access_token=${token}`);
    expect(await metricValue(gw.registry, 'websocket_errors_total', { type: 'origin_not_allowed' })).toBe(1);
  });

  it('closes a socket whose token expires (1008), after the answer it is streaming', async () => {
    for (const w of workers.splice(0)) w.stop();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    workers.push(
      new FakeWorker(gw.bus, {
        script: async (ctl) => {
          ctl.chunk('long ');
          let open = true;
          void gate.then(() => (open = false));
          while (open) {
            ctl.heartbeat();
            await sleep(20);
          }
          ctl.chunk('answer');
          ctl.done();
        },
      }),
    );
    // Expires in 2 s (tolerance does not extend a socket's life).
    const ws = await openSocket(`/ws/assistant/s-exp?access_token=${await mintToken('alice', { ttlS: 2 })}`);
    ws.send({ message: 'a long one' });
    await ws.until('stream_chunk');
    await sleep(2_500);
    expect(ws.closeCode).toBeUndefined();
    release();
    expect((await ws.until('response')).at(-1)).toMatchObject({ response: 'long answer' });
    await expect.poll(() => ws.closeCode, { timeout: 3_000 }).toBe(1008);
    expect(ws.ws.readyState).toBe(WebSocket.CLOSED);
    expect(await metricValue(gw.registry, 'websocket_closes_total', { reason: 'token_expired' })).toBe(1);
  });

  it('closes an idle socket at once when its token expires', async () => {
    const ws = await openSocket(`/ws/assistant/s-exp2?access_token=${await mintToken('alice', { ttlS: 1 })}`);
    await expect.poll(() => ws.closeCode, { timeout: 5_000 }).toBe(1008);
  });
});
