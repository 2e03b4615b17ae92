import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { LIMITS } from '@actionedx/shared';
import {
  CancelRecorder,
  FakeWorker,
  answerWith,
  sleep,
  waitFor,
  metricValue,
  startTestGateway,
  type TestGateway,
  TestSocket,
} from '@actionedx/testkit';
import { MemorySessionStore } from './memory-session-store.js';

let gw: TestGateway;
let store: MemorySessionStore;
let workers: FakeWorker[];
let sockets: TestSocket[];

const worker = (opts: ConstructorParameters<typeof FakeWorker>[1]): FakeWorker => {
  const w = new FakeWorker(gw.bus, opts);
  workers.push(w);
  return w;
};

const open = async (path = '/ws/assistant/session-123?user_id=user-456'): Promise<TestSocket> => {
  const s = await TestSocket.open(gw.wsUrl + path);
  sockets.push(s);
  return s;
};

/** The HTTP status of an upgrade the gateway refuses. */
const upgradeStatus = (path: string, headers: Record<string, string> = {}): Promise<number> =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(gw.wsUrl + path, { headers });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('open', () => {
      ws.close();
      reject(new Error('the upgrade succeeded'));
    });
    ws.once('error', () => {});
  });

/** A worker that streams one chunk, then keeps working (heartbeats) until the bus closes. */
const busyWorker = () =>
  worker({
    script: async (ctl) => {
      ctl.chunk('working');
      for (let i = 0; i < 200 && gw.bus.state() !== 'closed'; i++) {
        await sleep(20);
        ctl.heartbeat();
      }
    },
  });

const turn = { message: 'Help me with 9-Pillar audit', mode: 'strategist' };

beforeEach(async () => {
  store = new MemorySessionStore(3_600);
  gw = await startTestGateway({}, { sessionStore: store });
  workers = [];
  sockets = [];
});

afterEach(async () => {
  // Every frame any test received, read or not, is one of the shared protocol's messages.
  for (const s of sockets) expect(s.malformed).toEqual([]);
  for (const s of sockets) await s.close();
  for (const w of workers) w.stop();
  await gw.close();
});

describe('WebSocket /ws/assistant/:session_id', () => {
  it('greets with connected, then streams a turn: stream_start, chunks by seq, stream_end, response', async () => {
    const ws = await open();
    expect(ws.received[0]).toMatchObject({
      type: 'connected',
      session_id: 'session-123',
      message: 'Connected to ActionEDx assistant',
      timestamp: expect.any(String),
    });
    worker({ script: answerWith(['one ', 'two ', 'three']) });
    ws.send(turn);
    const msgs = await ws.until('response');
    expect(msgs.map((m) => m.type)).toEqual([
      'stream_start',
      'stream_chunk',
      'stream_chunk',
      'stream_chunk',
      'stream_end',
      'response',
    ]);
    const requestId = msgs[0]!.request_id;
    expect(msgs.slice(1, 4)).toEqual([
      { type: 'stream_chunk', content: 'one ', seq: 0 },
      { type: 'stream_chunk', content: 'two ', seq: 1 },
      { type: 'stream_chunk', content: 'three', seq: 2 },
    ]);
    expect(msgs[4]).toEqual({ type: 'stream_end', request_id: requestId });
    expect(msgs[5]).toMatchObject({
      type: 'response',
      response: 'one two three',
      suggestions: ['Try the next pillar'],
      model: 'mock-model',
      mode: 'strategist',
      task_type: 'realtime_tutoring',
      cached: false,
      request_id: requestId,
      usage: { total_tokens: 15 },
      cost_usd: 0.0001,
      latency_ms: expect.any(Number),
    });
    expect(workers[0]!.jobs[0]!.headers['x-request-id']).toBe(requestId);
  });

  it("carries the upgrade's trace into every turn's bus headers", async () => {
    const trace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const ws = await TestSocket.open(`${gw.wsUrl}/ws/assistant/traced?user_id=u1`, {
      traceparent: `00-${trace}-00f067aa0ba902b7-01`,
    });
    sockets.push(ws);
    const w = worker({ script: answerWith(['ok']) });
    ws.send(turn);
    await ws.until('response');
    ws.send(turn);
    await ws.until('response');
    const [a, b] = w.jobs.map((j) => j.headers.traceparent);
    expect(a).toContain(trace);
    expect(b).toContain(trace);
    expect(a).not.toBe(b); // a new span per turn
  });

  it('sends stream_reset then the whole answer when the worker is lost mid-answer', async () => {
    const ws = await open();
    const dead = worker({ id: 'dead', script: (ctl) => (ctl.chunk('Hel'), dead.stop()) });
    ws.send(turn);
    await waitFor(() => dead.jobs.length === 1, 1_000, 'the first job');
    worker({ id: 'alive', script: answerWith(['Hello', '!']) });
    const types = (await ws.until('response')).map((m) => (m.type === 'stream_chunk' ? `chunk:${String(m.content)}` : m.type));
    expect(types).toEqual(['stream_start', 'chunk:Hel', 'stream_reset', 'chunk:Hello', 'chunk:!', 'stream_end', 'response']);
    expect(ws.received.at(-1)).toMatchObject({ response: 'Hello!' });
  });

  it('answers an error with code, message, retryable and request_id when no worker is there', async () => {
    const ws = await open();
    ws.send(turn);
    const err = await ws.next();
    expect(err).toEqual({
      type: 'error',
      code: 'no_workers',
      message: 'No orchestrator is available.',
      retryable: true,
      request_id: expect.any(String),
    });
  });

  it('answers control messages: ping, typing, mode_switch (changes the default mode), cancel without a turn', async () => {
    const ws = await open();
    ws.send({ type: 'ping' });
    expect(await ws.next()).toMatchObject({ type: 'pong' });
    ws.send({ type: 'typing' });
    expect(await ws.next()).toMatchObject({ type: 'typing', session_id: 'session-123', user_id: 'user-456', is_typing: true });
    ws.send({ type: 'mode_switch', mode: 'oracle' });
    expect(await ws.next()).toEqual({ type: 'system', message: 'Mode switched to oracle.', mode: 'oracle' });
    ws.send({ type: 'cancel' });
    expect(await ws.next()).toMatchObject({ type: 'system' });
    const w = worker({ script: answerWith(['seen']) });
    ws.send({ message: 'which mode?' });
    expect((await ws.until('response')).at(-1)).toMatchObject({ mode: 'oracle' });
    expect(w.jobs[0]!.job.request.mode).toBe('oracle');
  });

  it('cancels the running turn on {type:"cancel"}: cancel published, error cancelled, socket usable', async () => {
    const cancels = new CancelRecorder(gw.bus);
    const ws = await open();
    busyWorker();
    ws.send(turn);
    const [start] = await ws.until('stream_chunk');
    ws.send({ type: 'cancel' });
    const err = await ws.next();
    expect(err).toMatchObject({ type: 'error', code: 'cancelled', request_id: start!.request_id });
    await waitFor(() => cancels.has(String(start!.request_id)), 1_000, 'the cancel');
    for (const w of workers.splice(0)) w.stop();
    worker({ script: answerWith(['after']) });
    ws.send(turn);
    expect((await ws.until('response')).at(-1)).toMatchObject({ response: 'after' });
  });

  it('refuses a second turn while one streams (busy), then finishes the first', async () => {
    const ws = await open();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    worker({
      script: async (ctl) => {
        ctl.chunk('first');
        await gate;
        ctl.done();
      },
    });
    ws.send(turn);
    await ws.until('stream_chunk');
    ws.send(turn);
    expect(await ws.next()).toMatchObject({ type: 'error', code: 'busy', retryable: true });
    release();
    expect((await ws.until('response')).at(-1)).toMatchObject({ response: 'first' });
  });

  it('publishes a cancel when the socket closes during a turn', async () => {
    const cancels = new CancelRecorder(gw.bus);
    const ws = await open();
    busyWorker();
    ws.send(turn);
    const [start] = await ws.until('stream_chunk');
    await ws.close();
    await waitFor(() => cancels.has(String(start!.request_id)), 1_000, 'the cancel');
    const cancel = cancels.cancels.find((c) => c.message.request_id === start!.request_id)!;
    expect(cancel.message.reason).toBe('client_gone');
    await waitFor(() => gw.gateway.dispatcher.inFlight === 0, 1_000, 'the turn to end');
  });

  it('takes a turn of exactly 16,000 characters (the documented limit)', async () => {
    const ws = await open();
    const w = worker({ script: answerWith(['ok']) });
    ws.send({ ...turn, message: 'x'.repeat(16_000) });
    expect((await ws.until('response')).at(-1)).toMatchObject({ type: 'response', response: 'ok' });
    expect(w.jobs[0]!.job.request.message).toHaveLength(16_000);
  });

  describe('bad input: an error message, the socket stays usable, other clients unaffected', () => {
    const cases: Array<[string, unknown, string]> = [
      ['non-JSON text', 'this is not json', 'invalid_json'],
      ['a JSON array', '[1,2,3]', 'invalid_message'],
      ['an unknown type', { type: 'dance' }, 'unknown_message_type'],
      ['an unknown mode', { ...turn, mode: 'pirate' }, 'unknown_mode'],
      ['an unknown task type', { ...turn, task_type: 'poetry' }, 'unknown_task_type'],
      ['an empty message', { ...turn, message: '   ' }, 'message_empty'],
      ['a message too long', { ...turn, message: 'x'.repeat(LIMITS.messageMaxChars + 1) }, 'message_too_long'],
      ['a missing message', { mode: 'ally' }, 'validation_failed'],
      ['a bad user_id', { ...turn, user_id: 'bad user' }, 'validation_failed'],
      ['a mode_switch to an unknown mode', { type: 'mode_switch', mode: 'pirate' }, 'unknown_mode'],
    ];

    for (const [what, input, code] of cases) {
      it(`${what} → ${code}`, async () => {
        const ws = await open();
        ws.send(input);
        const err = await ws.next();
        expect(err).toMatchObject({ type: 'error', code, retryable: false });
        expect(typeof err.message).toBe('string');
        worker({ script: answerWith(['still here']) });
        ws.send(turn);
        expect((await ws.until('response')).at(-1)).toMatchObject({ response: 'still here' });
      });
    }

    it('a binary frame → binary_frame', async () => {
      const ws = await open();
      ws.send(Buffer.from([0xde, 0xad, 0xbe, 0xef]));
      expect(await ws.next()).toMatchObject({ type: 'error', code: 'binary_frame' });
      ws.send({ type: 'ping' });
      expect(await ws.next()).toMatchObject({ type: 'pong' });
    });

    it('a message over the body limit → payload_too_large, socket open', async () => {
      const ws = await open();
      ws.send(JSON.stringify({ ...turn, context: { blob: 'x'.repeat(gw.config.bodyLimitBytes) } }));
      expect(await ws.next()).toMatchObject({ type: 'error', code: 'payload_too_large' });
      ws.send({ type: 'ping' });
      expect(await ws.next()).toMatchObject({ type: 'pong' });
    });

    it('a turn without user_id on a socket opened without one → validation_failed naming user_id', async () => {
      const ws = await open('/ws/assistant/anon-1');
      ws.send(turn);
      expect(await ws.next()).toMatchObject({ type: 'error', code: 'validation_failed', details: { field: 'user_id' } });
    });

    it('another client streams undisturbed while one sends garbage', async () => {
      const good = await open('/ws/assistant/good-1?user_id=u1');
      const bad = await open('/ws/assistant/bad-1?user_id=u2');
      worker({
        script: async (ctl) => {
          for (const part of ['a', 'b', 'c', 'd']) {
            ctl.chunk(part);
            await sleep(5);
          }
          ctl.done();
        },
      });
      good.send(turn);
      for (let i = 0; i < 10; i++) bad.send(i % 2 ? '{{{' : Buffer.from([i]));
      expect((await good.until('response')).at(-1)).toMatchObject({ response: 'abcd' });
      const errors = await Promise.all(Array.from({ length: 10 }, () => bad.next()));
      expect(errors.every((e) => e.type === 'error')).toBe(true);
      expect(await metricValue(gw.registry, 'websocket_errors_total', { type: 'binary_frame' })).toBe(5);
      expect(await metricValue(gw.registry, 'websocket_errors_total', { type: 'invalid_json' })).toBe(5);
    });
  });

  describe('upgrade', () => {
    it('refuses other paths with 404 and unsafe ids with 400', async () => {
      expect(await upgradeStatus('/ws/other/session-1')).toBe(404);
      expect(await upgradeStatus('/ws/assistant/')).toBe(404);
      expect(await upgradeStatus(`/ws/assistant/${'x'.repeat(LIMITS.sessionIdMaxChars + 1)}`)).toBe(400);
      expect(await upgradeStatus('/ws/assistant/a%20b')).toBe(400);
      expect(await upgradeStatus('/ws/assistant/a%2Fb')).toBe(400);
      expect(await upgradeStatus('/ws/assistant/a*b')).toBe(400);
      expect(await upgradeStatus('/ws/assistant/s1?user_id=bad%20user')).toBe(400);
      expect(await upgradeStatus(`/ws/assistant/s1?user_id=${'u'.repeat(LIMITS.userIdMaxChars + 1)}`)).toBe(400);
    });

    it('accepts a session id of exactly 128 characters with . : @ (as REST does), and keeps its session', async () => {
      const id = `team.alpha:user@example.org-${'x'.repeat(LIMITS.sessionIdMaxChars - 28)}`;
      expect(id).toHaveLength(LIMITS.sessionIdMaxChars);
      const ws = await open(`/ws/assistant/${id}?user_id=user@example.org`);
      expect(ws.received[0]).toMatchObject({ type: 'connected', session_id: id });
      const w = worker({ script: answerWith(['ok']) });
      ws.send(turn);
      expect((await ws.until('response')).at(-1)).toMatchObject({ response: 'ok' });
      expect(w.jobs[0]!.job.request).toMatchObject({ session_id: id, user_id: 'user@example.org' });
      await ws.close();
      await expect.poll(async () => (await store.load(id))?.message_count).toBe(1);
      // Percent-encoded in the path, it is the same session.
      const again = await open(`/ws/assistant/${encodeURIComponent(id)}?user_id=user@example.org`);
      expect(again.received[0]).toMatchObject({ type: 'connected', session_id: id });
      expect(await upgradeStatus(`/ws/assistant/${id}x`)).toBe(400);
    });
  });

  describe('a session store that hangs or fails', () => {
    const never = () => new Promise<never>(() => {});
    const hanging = { kind: 'memory' as const, load: never, open: never, save: async () => {}, remove: async () => {} };
    const failing = { ...hanging, load: () => Promise.reject(new Error('store down')), open: async () => undefined };

    it.each([
      ['hangs', hanging, 900],
      ['fails', failing, 0],
    ])('when it %s, the socket still opens with a fresh session', async (_what, sessionStore, atLeastMs) => {
      const g = await startTestGateway({}, { sessionStore });
      try {
        const started = performance.now();
        const ws = await TestSocket.open(`${g.wsUrl}/ws/assistant/s-store?user_id=u1`);
        sockets.push(ws);
        expect(performance.now() - started).toBeGreaterThanOrEqual(atLeastMs);
        expect(ws.received[0]).toMatchObject({ type: 'connected', session_id: 's-store', mode: 'strategist' });
        ws.send({ type: 'ping' });
        expect(await ws.next()).toMatchObject({ type: 'pong' });
        await ws.close();
      } finally {
        await g.close();
      }
    });
  });

  describe('sessions and stats', () => {
    it('keeps session metadata in the store across reconnections, and reports it in /api/websocket/stats', async () => {
      worker({ script: answerWith(['ok']) });
      const first = await open('/ws/assistant/s-42?user_id=u42');
      first.send({ type: 'mode_switch', mode: 'ally' });
      await first.next();
      first.send(turn);
      await first.until('response');
      const stats = (await (await fetch(`${gw.baseUrl}/api/websocket/stats`)).json()) as Record<string, any>;
      expect(stats).toMatchObject({ active_connections: 1, total_connections: 1 });
      expect(stats.messages_in).toBe(2);
      expect(stats.messages_out).toBeGreaterThanOrEqual(6);
      expect(stats.sessions).toEqual([
        {
          session_id: 's-42',
          user_id: 'u42',
          connected_at: expect.any(String),
          message_count: 1,
          mode: 'ally',
          streaming: false,
        },
      ]);
      await first.close();
      expect(await store.load('s-42')).toMatchObject({ message_count: 1, mode: 'ally', user_id: 'u42' });

      // The session is u42's: nobody else (nor a socket naming no user) gets it, as if it did not exist.
      expect(await upgradeStatus('/ws/assistant/s-42')).toBe(404);
      expect(await upgradeStatus('/ws/assistant/s-42?user_id=u43')).toBe(404);
      const again = await open('/ws/assistant/s-42?user_id=u42');
      expect(again.received[0]).toMatchObject({ type: 'connected', mode: 'ally' });
      again.send({ message: 'hello again' });
      await again.until('response');
      expect(await metricValue(gw.registry, 'websocket_active_connections')).toBe(1);
      expect(await metricValue(gw.registry, 'websocket_messages_total', { direction: 'inbound' })).toBe(3);
      // Turns save the session at most every few seconds; closing saves the final count.
      await again.close();
      await expect.poll(async () => (await store.load('s-42'))?.message_count).toBe(2);
      expect(await store.load('s-42')).toMatchObject({ mode: 'ally', user_id: 'u42' });
    });
  });
});
