import { connect, type Socket } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LIMITS } from '@actionedx/shared';
import { FakeWorker, TestSocket, answerWith, sleep, startTestGateway, type TestGateway } from '@actionedx/testkit';
import { loadGatewayConfig } from '../config.js';

const DEFAULT_EDGE = loadGatewayConfig({}, { defaultAuthMode: 'open' }).edge;
/** `{"a": {"a": ... 1}}` nested `levels` deep (the outer object is level 1). */
const nested = (levels: number): string => '{"a":'.repeat(levels) + '1' + '}'.repeat(levels);

let gw: TestGateway;
let worker: FakeWorker;
beforeAll(async () => {
  gw = await startTestGateway({
    // Generous rates: the fuzzing below sends hundreds of requests as a handful of users.
    roleLimits: {
      user: { requests_per_minute: 100_000, tokens_per_minute: 1e9, daily_budget_usd: 1e6, ws_connections: 100, ws_messages_per_second: 10_000, ws_message_burst: 10_000 },
      admin: { requests_per_minute: 100_000, tokens_per_minute: 1e9, daily_budget_usd: 1e6, ws_connections: 100, ws_messages_per_second: 10_000, ws_message_burst: 10_000 },
    },
    edge: { ...DEFAULT_EDGE, httpHeadersTimeoutMs: 1_000, httpRequestTimeoutMs: 2_000 },
  });
  worker = new FakeWorker(gw.bus, { script: answerWith(['ok']) });
});
afterAll(async () => {
  worker.stop();
  await gw.close();
});

const post = (path: string, body: string) =>
  fetch(`${gw.baseUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });

describe('JSON nesting depth, bounded at the edge', () => {
  it('refuses a context 3,000 levels deep (6 KB, under the context limit) with 400 too_deep on REST, not a 500', async () => {
    const arrays = `{"user_id":"u","message":"hi","context":{"a":${'['.repeat(3_000)}${']'.repeat(3_000)}}}`;
    expect(arrays.length).toBeLessThan(6_100);
    const objects = `{"user_id":"u","message":"hi","context":${'{"":'.repeat(3_000)}1${'}'.repeat(3_000)}}`;
    expect(objects.length).toBeLessThan(LIMITS.contextMaxBytes);
    for (const body of [arrays, objects]) {
      for (const path of ['/api/assistant/chat', '/api/strategy-audit']) {
        const res = await post(path, body);
        expect(res.status).toBe(400);
        expect(await res.json()).toMatchObject({ error: { code: 'too_deep', details: { max_depth: 32 } } });
      }
    }
    expect(worker.jobs).toHaveLength(0);
  });

  it('accepts a body exactly 32 levels deep and refuses 33', async () => {
    // The body is level 1 and context level 2: context nests 30 more levels for 32 in all.
    const at = (levels: number) => `{"user_id":"u","message":"hi","context":${nested(levels - 1)}}`;
    expect((await post('/api/assistant/chat', at(32))).status).toBe(200);
    expect((await post('/api/assistant/chat', at(33))).status).toBe(400);
    const deepArray = `{"user_id":"u","message":"hi","context":{"a":${'['.repeat(40)}${']'.repeat(40)}}}`;
    expect((await post('/api/assistant/chat', deepArray)).status).toBe(400);
  });

  it('refuses the same over the WebSocket with a too_deep error frame, and the socket stays usable', async () => {
    const ws = await TestSocket.open(`${gw.wsUrl}/ws/assistant/deep?user_id=u`);
    try {
      ws.send(`{"message":"hi","context":${nested(3_000)}}`);
      expect(await ws.next()).toMatchObject({ type: 'error', code: 'too_deep' });
      ws.send({ message: 'still here' });
      expect((await ws.until('response')).at(-1)).toMatchObject({ response: 'ok' });
    } finally {
      await ws.close();
    }
  });
});

describe('no input reaches a 500', () => {
  // Bodies from anything JSON can hold, near-valid chat requests with every field fuzzed, and raw strings.
  const field = fc.oneof(fc.jsonValue({ maxDepth: 6 }), fc.string(), fc.constant(undefined));
  const nearValid = fc.record(
    { user_id: field, message: fc.oneof(fc.string({ minLength: 1 }), field), mode: field, task_type: field, session_id: field, context: fc.oneof(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 40 })), field), history: field, use_cache: field },
    { requiredKeys: [] },
  );
  const bodies = fc.oneof(
    fc.jsonValue({ maxDepth: 50 }).map((v) => JSON.stringify(v)),
    nearValid.map((v) => JSON.stringify(v)),
    fc.string({ maxLength: 300 }),
    fc.integer({ min: 1, max: 4_000 }).map((d) => `{"user_id":"u","message":"m","context":${'['.repeat(d)}${']'.repeat(d)}}`),
  );

  it.each(['/api/assistant/chat', '/api/strategy-audit', '/api/tri-core-loop', '/api/house-of-hearts'])('POST %s answers < 500 whatever the body', async (path) => {
    await fc.assert(
      fc.asyncProperty(bodies, async (body) => {
        const res = await post(path, body);
        await res.arrayBuffer();
        if (res.status >= 500) throw new Error(`${res.status} for ${body.slice(0, 200)}`);
      }),
      { numRuns: 150 },
    );
  });

  it('never answers a WebSocket message with an internal error', async () => {
    const ws = await TestSocket.open(`${gw.wsUrl}/ws/assistant/fuzz?user_id=u`);
    try {
      await fc.assert(
        fc.asyncProperty(bodies, async (body) => {
          ws.send(body);
          for (;;) {
            const m = await ws.next(5_000);
            if (m.type === 'error') {
              if (m.code === 'internal') throw new Error(`internal for ${body.slice(0, 200)}`);
              return;
            }
            if (m.type === 'response' || m.type === 'pong' || m.type === 'system' || m.type === 'typing') return;
          }
        }),
        { numRuns: 150 },
      );
    } finally {
      await ws.close();
    }
  });
});

/** A raw connection that sends `prefix`, then one more byte every `everyMs`, until the server closes it. */
function trickle(prefix: string, everyMs: number): { socket: Socket; closed: Promise<number> } {
  const socket = connect(gw.port, '127.0.0.1');
  const started = Date.now();
  const closed = new Promise<number>((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    socket.once('connect', () => {
      socket.write(prefix);
      timer = setInterval(() => socket.writable && socket.write('a'), everyMs);
    });
    const done = () => (clearInterval(timer), resolve(Date.now() - started));
    socket.once('close', done);
    socket.on('error', () => {});
    socket.on('data', () => {});
  });
  return { socket, closed };
}

describe('slow HTTP clients', () => {
  it('cuts 40 slowloris connections (headers a byte at a time) after the headers timeout', async () => {
    const conns = Array.from({ length: 40 }, () => trickle('GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: ', 200));
    const closedIn = await Promise.race([Promise.all(conns.map((c) => c.closed)), sleep(10_000).then(() => undefined)]);
    for (const c of conns) c.socket.destroy();
    expect(closedIn, 'every slowloris connection closed by the server').toBeDefined();
    // Headers timeout 1 s, checked every second.
    for (const ms of closedIn!) expect(ms).toBeLessThan(5_000);
    expect((await fetch(`${gw.baseUrl}/healthz`)).status).toBe(200);
  });

  it('cuts a body that trickles in after the request timeout', async () => {
    const c = trickle('POST /api/assistant/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"', 200);
    const ms = await Promise.race([c.closed, sleep(10_000).then(() => undefined)]);
    c.socket.destroy();
    expect(ms).toBeDefined();
    expect(ms!).toBeLessThan(6_000);
  });
});
