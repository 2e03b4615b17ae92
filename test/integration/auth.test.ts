import { createHmac, generateKeyPairSync, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { SignJWT, base64url, exportJWK } from 'jose';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  TEST_AUTH,
  adminHeaders,
  authHeaders,
  bearer,
  counterSum,
  createApiKey,
  getJson,
  mintToken,
  postJson,
  sampleValue,
  startRedis,
  startStack,
  until,
  WsClient,
  type ServiceProcess,
  type Stack,
} from '@actionedx/testkit';

/**
 * The door on the distributed platform: two gateway processes on one NATS and one Redis, the orchestrator
 * and mock-llm as processes, authentication required. JWTs are accepted from the test secret (HS256) and
 * from a JWKS (RS256) this file serves.
 */

const unique = (what: string) => `${what} ${randomUUID()}`;
/** Users of this run: Redis keeps keys, sessions and counters between runs, so every run has its own. */
const RUN = randomUUID().slice(0, 6);
const u = (name: string) => `${name}-${RUN}`;
const now = () => Math.floor(Date.now() / 1000);
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const publicPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();

/** An RS256 token from the JWKS's key, with claims overridden (undefined removes one). */
async function rsToken(claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}): Promise<string> {
  const all: Record<string, unknown> = { sub: u('rs-user'), iss: TEST_AUTH.issuer, aud: TEST_AUTH.audience, iat: now(), exp: now() + 600, ...claims };
  for (const [k, v] of Object.entries(all)) if (v === undefined) delete all[k];
  return new SignJWT(all).setProtectedHeader({ alg: 'RS256', kid: 'k1', ...header }).sign(rsa.privateKey);
}
const b64json = (v: unknown) => base64url.encode(JSON.stringify(v));
const claims = (sub: string) => ({ sub, iss: TEST_AUTH.issuer, aud: TEST_AUTH.audience, exp: now() + 600 });

async function startJwks(): Promise<{ url: string; close(): Promise<void> }> {
  const jwk = { ...(await exportJWK(rsa.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  const server: Server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const chat = (gw: ServiceProcess, body: Record<string, unknown>, headers: Record<string, string>) =>
  postJson(`${gw.url}/api/assistant/chat`, body, headers);

/** `{name: {param: value}}` of a structured-field list (the RateLimit fields). */
function sfList(value: string | null): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const item of (value ?? '').split(/,\s*/)) {
    const [name, ...params] = item.split(';');
    out[JSON.parse(name!)] = Object.fromEntries(params.map((p) => p.split('=') as [string, string]));
  }
  return out;
}

/** The status of a WebSocket upgrade that is refused, or 101. */
const upgradeStatus = (url: string, headers: Record<string, string> = {}) =>
  new Promise<number>((resolve) => {
    const ws = new WebSocket(url, { headers });
    ws.once('unexpected-response', (_req, res) => (resolve(res.statusCode ?? 0), ws.terminate()));
    ws.once('open', () => (resolve(101), ws.close()));
    ws.once('error', () => {});
  });

const metricsOf = async (gw: ServiceProcess) => (await fetch(`${gw.opsUrl}/metrics`)).text();

describe('the door across two gateway replicas (real NATS and Redis)', () => {
  let stack: Stack;
  let a: ServiceProcess;
  let b: ServiceProcess;
  let jwks: Awaited<ReturnType<typeof startJwks>>;

  beforeAll(async () => {
    jwks = await startJwks();
    stack = await startStack({
      orchestrators: 1,
      gatewayEnv: {
        JWT_JWKS_URL: jwks.url,
        JWT_ALGORITHMS: 'HS256,RS256',
        JWT_CLOCK_TOLERANCE_S: '5',
        API_KEY_CACHE_MS: '500',
        CORS_ORIGINS: 'https://app.example',
        RATE_LIMITS: JSON.stringify({ user: { requests_per_minute: 20, ws_connections: 3 } }),
      },
    });
    a = stack.gateway;
    b = await stack.addGateway();
  }, 90_000);
  afterAll(async () => {
    await stack?.stop();
    await jwks?.close();
  });

  describe('the JWT matrix (REST on both replicas, and the WebSocket upgrade)', () => {
    const cases: Array<[string, () => Promise<string>]> = [
      ['alg none', async () => `${b64json({ alg: 'none', typ: 'JWT' })}.${b64json(claims('mallory'))}.`],
      [
        'HS/RS confusion (HS256 keyed with the public key)',
        async () => {
          const input = `${b64json({ alg: 'HS256', typ: 'JWT' })}.${b64json(claims('mallory'))}`;
          return `${input}.${createHmac('sha256', publicPem).update(input).digest('base64url')}`;
        },
      ],
      ['an algorithm not pinned (HS512)', () => new SignJWT(claims('mallory')).setProtectedHeader({ alg: 'HS512' }).sign(new TextEncoder().encode(TEST_AUTH.secret))],
      ['a wrong aud', () => rsToken({ aud: 'another-api' })],
      ['a wrong iss', () => rsToken({ iss: 'https://evil.example' })],
      ['an expired token', () => rsToken({ exp: now() - 120 })],
      ['nbf in the future', () => rsToken({ nbf: now() + 600 })],
      ['no exp', () => rsToken({ exp: undefined })],
      ['an unknown kid', () => rsToken({}, { kid: 'k-unknown' })],
      [
        'a tampered signature',
        async () => {
          const [h, p, s] = (await rsToken()).split('.');
          return `${h}.${p}.${s!.slice(0, -6)}${s!.slice(-6) === 'AAAAAA' ? 'BBBBBB' : 'AAAAAA'}`;
        },
      ],
      ['a tampered payload', async () => {
        const [h, , s] = (await rsToken()).split('.');
        return `${h}.${b64json(claims('mallory'))}.${s}`;
      }],
      ['an HS256 token signed with another secret', () => mintToken('alice', { secret: `${TEST_AUTH.secret}-forged` })],
    ];

    it.each(cases)('refuses %s with 401 unauthorized everywhere', async (_what, make) => {
      const token = await make();
      for (const gw of [a, b]) {
        const res = await chat(gw, { message: 'hi' }, bearer(token));
        expect(res.status).toBe(401);
        expect(res.body.error.code).toBe('unauthorized');
        expect(res.headers.get('www-authenticate')).toBe('Bearer realm="actionedx", error="invalid_token"');
      }
      expect(await upgradeStatus(`${stack.wsUrl}/ws/assistant/m-${randomUUID().slice(0, 8)}?access_token=${encodeURIComponent(token)}`)).toBe(401);
    });

    it('accepts a valid HS256 and a valid RS256 (JWKS) token on both replicas, and counts every refusal by reason', async () => {
      for (const gw of [a, b]) {
        expect((await chat(gw, { message: unique('hs') }, await authHeaders(u('matrix-hs')))).status).toBe(200);
        const rs = await chat(gw, { message: unique('rs') }, bearer(await rsToken({ sub: u('matrix-rs') })));
        expect(rs.status).toBe(200);
      }
      const text = await metricsOf(a);
      for (const reason of ['alg_not_allowed', 'bad_signature', 'wrong_claims', 'expired', 'not_yet_valid', 'unknown_key']) {
        expect(counterSum(text, 'gateway_auth_failures_total', (l) => l.includes(`reason="${reason}"`)), reason).toBeGreaterThan(0);
      }
    });
  });

  describe('API keys', () => {
    it('created on one replica work on the other, and a revocation reaches both', async () => {
      const key = await createApiKey(a.url, { user_id: u('key-user'), name: 'integration' });
      const onB = await chat(b, { message: unique('by key') }, bearer(key.key));
      expect(onB.status).toBe(200);
      const listed = await getJson(`${b.url}/api/admin/keys?user_id=${u('key-user')}`, adminHeaders());
      expect(listed.body.keys).toEqual([expect.objectContaining({ id: key.id, revoked_at: null })]);
      expect(JSON.stringify(listed.body)).not.toContain(key.key.slice(-43));

      const revoked = await fetch(`${a.url}/api/admin/keys/${key.id}`, { method: 'DELETE', headers: adminHeaders() });
      expect(revoked.status).toBe(200);
      expect((await chat(a, { message: unique('revoked') }, bearer(key.key))).status).toBe(401);
      // The other replica trusted its lookup for API_KEY_CACHE_MS (500 ms here).
      await until(async () => (await chat(b, { message: unique('revoked') }, bearer(key.key))).status === 401, 5_000, 'the revocation on the other replica');
    });
  });

  describe('ownership (BOLA)', () => {
    it("gives another user's WebSocket session a 404 on either replica", async () => {
      const session = `own-${randomUUID().slice(0, 8)}`;
      const alice = await WsClient.open(`${a.url.replace('http', 'ws')}/ws/assistant/${session}`, await authHeaders(u('bola-alice')));
      await alice.next((m) => m.type === 'connected');
      for (const gw of [a, b]) {
        expect(await upgradeStatus(`${gw.url.replace('http', 'ws')}/ws/assistant/${session}`, await authHeaders(u('bola-bob')))).toBe(404);
      }
      expect(await upgradeStatus(`${b.url.replace('http', 'ws')}/ws/assistant/${session}`, await authHeaders(u('bola-alice')))).toBe(101);
      alice.close();
    });

    it("never answers with another user's history or per-user cached answers", async () => {
      const session = `hist-${randomUUID().slice(0, 8)}`;
      const [alice, bob] = [await authHeaders(u('bola-alice')), await authHeaders(u('bola-bob'))];
      const second = unique('What is the next step?');
      // Bob's answer to the question with no history at all (the mock's text is a function of the prompt).
      const bobFresh = (await chat(b, { message: second, session_id: `fresh-${randomUUID().slice(0, 8)}`, use_cache: false }, bob)).body.response as string;
      // Alice: a first turn on the session, then the question, answered with her first turn as history.
      expect((await chat(a, { message: unique('Our org is called Octarine; audit us'), session_id: session }, alice)).status).toBe(200);
      let aliceSecond = '';
      await until(
        async () => {
          aliceSecond = (await chat(a, { message: second, session_id: session, use_cache: false }, alice)).body.response as string;
          return aliceSecond !== bobFresh;
        },
        5_000,
        "alice's history to be used",
      );
      // Bob naming Alice is refused; Bob as himself on her session id gets his own (empty) history.
      const claim = await chat(b, { user_id: u('bola-alice'), message: second, session_id: session }, bob);
      expect(claim.status).toBe(403);
      expect(claim.body.error.code).toBe('user_mismatch');
      const bobOnHers = (await chat(b, { message: second, session_id: session, use_cache: false }, bob)).body.response as string;
      expect(bobOnHers).toBe(bobFresh);
      // A per-user cached answer (strategy audits are per user) never answers someone else.
      const audit = { message: unique('Audit our strategy'), task_type: 'strategy_audit' };
      expect((await chat(a, audit, alice)).body.cached).toBe(false);
      expect((await chat(b, audit, alice)).body.cached).toBe(true);
      expect((await chat(b, audit, bob)).body.cached).toBe(false);
    });
  });

  describe('the admin surface', () => {
    it('refuses users on both replicas and serves admins; sessions in /api/websocket/stats only for admins', async () => {
      const user = await authHeaders(u('plain-user'));
      for (const gw of [a, b]) {
        for (const [method, path] of [
          ['GET', '/api/cache/stats'],
          ['GET', '/api/cache/health'],
          ['POST', '/api/cache/invalidate?pattern=*'],
          ['GET', '/api/metrics'],
          ['GET', '/api/admin/keys'],
        ] as const) {
          const res = await fetch(`${gw.url}${path}`, { method, headers: user });
          expect(res.status, `${method} ${path}`).toBe(403);
          expect((await fetch(`${gw.url}${path}`, { method })).status, `${method} ${path}`).toBe(401);
        }
        expect((await getJson(`${gw.url}/api/cache/stats`, adminHeaders())).status).toBe(200);
        expect((await fetch(`${gw.url}/api/metrics`, { headers: await authHeaders('ops', { role: 'admin' }) })).status).toBe(200);
        // Prometheus scrapes the ops port; the public port has no /metrics at all.
        expect((await fetch(`${gw.url}/metrics`, { headers: user })).status).toBe(404);
        expect((await fetch(`${gw.opsUrl}/metrics`)).status).toBe(200);
      }
      const ws = await WsClient.open(`${stack.wsUrl}/ws/assistant/stats-${randomUUID().slice(0, 8)}`, await authHeaders(u('stats-user')));
      await ws.next((m) => m.type === 'connected');
      expect((await getJson(`${a.url}/api/websocket/stats`, user)).body.sessions).toEqual([]);
      expect((await getJson(`${a.url}/api/websocket/stats`, adminHeaders())).body.sessions).toEqual(
        expect.arrayContaining([expect.objectContaining({ user_id: u('stats-user') })]),
      );
      ws.close();
    });

    it('answers health without host names, with security headers and no x-powered-by', async () => {
      const res = await fetch(`${a.url}/api/health`);
      const text = await res.text();
      expect(text).not.toMatch(/orch-1|worker_id/);
      expect(res.headers.get('x-powered-by')).toBeNull();
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    });
  });

  describe('rate limits shared by the replicas', () => {
    it('hold at the quota across two gateways, with RateLimit headers on every answer and Retry-After on each refusal', async () => {
      const headers = await authHeaders(u('rl-user'));
      const results = await Promise.all(
        Array.from({ length: 44 }, (_, i) => chat(i % 2 ? a : b, { message: unique('limited') }, headers)),
      );
      const ok = results.filter((r) => r.status === 200);
      const refused = results.filter((r) => r.status === 429);
      expect(ok).toHaveLength(20);
      expect(refused).toHaveLength(24);
      // Each admitted call saw a different count: the counter is one, in Redis.
      expect(ok.map((r) => Number(sfList(r.headers.get('ratelimit')).requests!.r)).sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i));
      for (const r of results) expect(sfList(r.headers.get('ratelimit-policy')).requests).toEqual({ q: '20', w: '60' });
      for (const r of refused) {
        expect(r.body.error).toMatchObject({ code: 'rate_limited', retryable: true });
        const retry = Number(r.headers.get('retry-after'));
        expect(retry).toBeGreaterThan(0);
        expect(retry).toBeLessThanOrEqual(60);
        expect(sfList(r.headers.get('ratelimit')).requests!.r).toBe('0');
      }
      const refusedOnA = counterSum(await metricsOf(a), 'gateway_rate_limited_total', (l) => l.includes('kind="requests"'));
      const refusedOnB = counterSum(await metricsOf(b), 'gateway_rate_limited_total', (l) => l.includes('kind="requests"'));
      expect(refusedOnA + refusedOnB).toBe(24);
    });

    it('charges real model tokens and spend: a key over its tokens or its daily budget is refused, on REST and WebSocket', async () => {
      const tokens = await createApiKey(a.url, { user_id: u('tok-user'), limits: { tokens_per_minute: 50 } });
      const first = await chat(a, { message: unique('a first answer'), use_cache: false }, bearer(tokens.key));
      expect(first.status).toBe(200);
      expect(first.body.usage.total_tokens).toBeGreaterThan(50);
      await until(async () => (await chat(b, { message: unique('more') }, bearer(tokens.key))).status === 429, 5_000, 'the token limit');
      const refused = await chat(b, { message: unique('more') }, bearer(tokens.key));
      expect(refused.body.error.code).toBe('token_rate_limited');

      const budget = await createApiKey(a.url, { user_id: u('budget-user'), limits: { daily_budget_usd: 0.000001 } });
      const paid = await chat(a, { message: unique('a paid answer'), use_cache: false }, bearer(budget.key));
      expect(paid.status).toBe(200);
      expect(paid.body.cost_usd).toBeGreaterThan(0.000001);
      await until(async () => (await chat(b, { message: unique('again') }, bearer(budget.key))).status === 429, 5_000, 'the budget');
      const over = await chat(b, { message: unique('again') }, bearer(budget.key));
      expect(over.body.error).toMatchObject({ code: 'budget_exceeded', retryable: true });
      expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);

      const ws = await WsClient.open(`${stack.wsUrl}/ws/assistant/budget-${randomUUID().slice(0, 8)}`, bearer(budget.key));
      await ws.next((m) => m.type === 'connected');
      ws.send({ message: unique('over budget?') });
      expect(await ws.next((m) => m.type === 'error')).toMatchObject({ code: 'budget_exceeded', details: { limit: 'budget' } });
      ws.close();
    });
  });

  describe('WebSocket hardening', () => {
    it('refuses an Origin outside CORS_ORIGINS, accepts a listed one', async () => {
      const token = await mintToken(u('origin-user'));
      expect(await upgradeStatus(`${stack.wsUrl}/ws/assistant/o-${randomUUID().slice(0, 8)}?access_token=${token}`, { origin: 'http://evil.example' })).toBe(403);
      expect(await upgradeStatus(`${stack.wsUrl}/ws/assistant/o-${randomUUID().slice(0, 8)}?access_token=${token}`, { origin: 'https://app.example' })).toBe(101);
    });

    it('caps connections per user across replicas, and a dead replica gives its slots back', async () => {
      // A third replica with a short lease, to be killed.
      const c = await stack.addGateway({ WS_CONNECTION_LEASE_MS: '1500' });
      const headers = await authHeaders(u('cap-user'));
      const url = (gw: ServiceProcess) => `${gw.url.replace('http', 'ws')}/ws/assistant/cap-${randomUUID().slice(0, 8)}`;
      const held = [await WsClient.open(url(c), headers), await WsClient.open(url(c), headers), await WsClient.open(url(c), headers)];
      expect(await upgradeStatus(url(a), headers)).toBe(429);
      expect(await upgradeStatus(url(b), headers)).toBe(429);
      c.kill('SIGKILL');
      await c.exited;
      // Its sockets never closed cleanly; their slots lapse after the lease.
      await until(async () => (await upgradeStatus(url(a), headers)) === 101, 10_000, 'the dead replica’s slots to lapse');
      for (const ws of held) ws.ws.terminate();
    });
  });

  describe('edge limits', () => {
    it('refuses a context nested 3,000 levels deep with 400 too_deep on REST and WebSocket', async () => {
      const body = `{"message":"hi","context":{"a":${'['.repeat(3_000)}${']'.repeat(3_000)}}}`;
      const res = await fetch(`${a.url}/api/assistant/chat`, { method: 'POST', headers: { 'content-type': 'application/json', ...(await authHeaders(u('deep-user'))) }, body });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('too_deep');
      const ws = await WsClient.open(`${stack.wsUrl}/ws/assistant/deep-${randomUUID().slice(0, 8)}`, await authHeaders(u('deep-user')));
      await ws.next((m) => m.type === 'connected');
      ws.send(body);
      expect(await ws.next((m) => m.type === 'error')).toMatchObject({ code: 'too_deep' });
      ws.close();
    });

    it('cuts 40 slowloris connections', async () => {
      const port = Number(new URL(b.url).port);
      const conns = Array.from({ length: 40 }, () => {
        const socket: Socket = connect(port, '127.0.0.1');
        const closed = new Promise<void>((resolve) => {
          let timer: NodeJS.Timeout | undefined;
          socket.once('connect', () => {
            socket.write('GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: ');
            timer = setInterval(() => socket.writable && socket.write('a'), 500);
          });
          socket.once('close', () => (clearInterval(timer), resolve()));
          socket.on('error', () => {});
        });
        return { socket, closed };
      });
      // HTTP_HEADERS_TIMEOUT_MS is 10 s by default, checked every second.
      const cut = await Promise.race([Promise.all(conns.map((c) => c.closed)).then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 20_000))]);
      for (const c of conns) c.socket.destroy();
      expect(cut).toBe(true);
    }, 30_000);
  });
});

describe('the limiter’s Redis down', () => {
  let stack: Stack;
  let limiter: Awaited<ReturnType<typeof startRedis>>;
  beforeAll(async () => {
    limiter = await startRedis();
    stack = await startStack({ orchestrators: 1, gatewayEnv: { LIMITER_REDIS_URL: limiter.url } });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
    await limiter?.stop();
  });

  it('refuses chat with 503 limiter_unavailable (never unlimited), counts it, and admits again once it is back', async () => {
    const headers = await authHeaders(u('fc-user'), { ttlS: 3_600 });
    expect((await chat(stack.gateway, { message: unique('before') }, headers)).status).toBe(200);
    await limiter.stop();
    // The replica may admit from the block it leased before the outage until that lease lapses (a second at most),
    // never after: the next lease fails, and the call is refused.
    await new Promise((r) => setTimeout(r, 1_100));
    const refused = await chat(stack.gateway, { message: unique('during') }, headers);
    expect(refused.status).toBe(503);
    expect(refused.body.error).toMatchObject({ code: 'limiter_unavailable', retryable: true });
    expect(await upgradeStatus(`${stack.wsUrl}/ws/assistant/fc-${randomUUID().slice(0, 8)}`, headers)).toBe(503);
    const text = await metricsOf(stack.gateway);
    expect(sampleValue(text, 'gateway_limiter_errors_total', { operation: 'admit' })).toBeGreaterThanOrEqual(1);
    limiter = await startRedis(limiter.port);
    await until(async () => (await chat(stack.gateway, { message: unique('after') }, headers)).status === 200, 15_000, 'admission to resume');
  }, 40_000);
});

describe('a WebSocket client that does not read', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      orchestrators: 1,
      // Long answers (strategy audits may run to 1,200 tokens), and room for many turns a second: what used to
      // grow the gateway by 176 MiB in 20 s.
      mockLlmEnv: { MOCK_LLM_COMPLETION_TOKENS: '1000' },
      gatewayEnv: { RATE_LIMITS: JSON.stringify({ user: { requests_per_minute: 100_000, ws_messages_per_second: 100, ws_message_burst: 100 } }) },
    });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  /** What the gateway's JS holds: heap in use plus Buffers (a socket's queued writes are Buffers). */
  const held = async () => {
    const text = await metricsOf(stack.gateway);
    return {
      heap: sampleValue(text, 'nodejs_heap_size_used_bytes')!,
      external: sampleValue(text, 'nodejs_external_memory_bytes')!,
      rss: sampleValue(text, 'process_resident_memory_bytes')!,
      queued: sampleValue(text, 'websocket_send_buffer_bytes')!,
    };
  };

  it('is closed once 1 MiB is queued for it, and the gateway’s memory comes back', async () => {
    const headers = await authHeaders(`slow-${randomUUID().slice(0, 8)}`, { ttlS: 3_600 });
    // Warm the cache: the turns below replay this long answer as fast as the gateway can send it. A history of
    // their own keeps the socket's session history out of their cache key: every turn is the same question.
    const turn = { message: unique('A very long answer please'), task_type: 'strategy_audit', history: [{ role: 'user', content: 'Audit us.' }] };
    const warm = await chat(stack.gateway, turn, headers);
    expect(warm.status).toBe(200);
    expect((await chat(stack.gateway, turn, headers)).body.cached).toBe(true);
    const before = await held();

    const ws = new WebSocket(`${stack.wsUrl}/ws/assistant/slow-${randomUUID().slice(0, 8)}`, { headers });
    let closeCode: number | undefined;
    ws.on('close', (code) => (closeCode = code));
    await new Promise<void>((resolve) => ws.once('message', () => resolve()));
    (ws as unknown as { _socket: Socket })._socket.pause();
    let peak = before.heap + before.external;
    const sender = setInterval(() => ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify(turn)), 20);
    try {
      await until(
        async () => {
          const m = await held();
          peak = Math.max(peak, m.heap + m.external);
          return counterSum(await metricsOf(stack.gateway), 'websocket_closes_total', (l) => l.includes('reason="send_buffer_full"')) === 1;
        },
        30_000,
        'the gateway to close the slow reader',
      );
    } finally {
      clearInterval(sender);
    }
    // Bounded while it lasted: 1 MiB queued at most, plus what is in flight (was: 176 MiB in 20 s).
    expect(peak - (before.heap + before.external)).toBeLessThan(64 * 1024 * 1024);
    if (process.env.DEBUG_SLOW_READER) console.log('slow reader', { before, peak, after: await held() });
    // Nothing is queued for it any more, and what the gateway's JS held comes back.
    await until(async () => (await held()).queued === 0, 5_000, 'the send buffer to empty');
    await until(
      async () => {
        await chat(stack.gateway, { message: unique('churn') }, headers); // a little work lets the GC run
        const m = await held();
        return m.heap + m.external < before.heap + before.external + 16 * 1024 * 1024;
      },
      30_000,
      'the memory to come back',
    );
    (ws as unknown as { _socket: Socket })._socket.resume();
    await until(() => closeCode !== undefined, 5_000, 'the client to see the close');
    expect([1013, 1006]).toContain(closeCode);
    expect(counterSum(await metricsOf(stack.gateway), 'websocket_active_connections')).toBe(0);
  }, 90_000);
});
