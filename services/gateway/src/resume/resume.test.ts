import { afterEach, describe, expect, it } from 'vitest';
import { Counter, Registry } from 'prom-client';
import { InProcessBus, Subjects, createLogger, encodeFrames, type Bus, type BusState, type ChatResponse, type Frame } from '@actionedx/shared';
import {
  CancelRecorder,
  FakeWorker,
  TestSocket,
  sleep,
  startTestGateway,
  waitFor,
  type SocketMessage,
  type TestGateway,
} from '@actionedx/testkit';
import { AnswerReplay, type ResumeSink } from './answer-replay.js';
import type { AnswerLog } from './answer-log.js';
import { MemoryAnswerLog } from './memory-answer-log.js';
import { ResumeDesk } from './resume-desk.js';

const RID = 'req-1';
const base = (attempt = 0, delivery?: number) => ({ request_id: RID, attempt, ...(delivery ? { delivery } : {}) });
const chunk = (seq: number, delta: string, attempt = 0, delivery?: number): Frame => ({ type: 'chunk', ...base(attempt, delivery), seq, delta });
const done = (chunks: number, attempt = 0, delivery?: number): Frame => ({
  type: 'done',
  ...base(attempt, delivery),
  chunks,
  suggestions: [],
  model: 'm',
  mode: 'strategist',
  task_type: 'realtime_tutoring',
  cached: false,
  usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
  cost_usd: 0,
  latency_ms: 1,
});

/** A sink that writes down what a client would get. */
function recorder() {
  const got: Array<[string, unknown?]> = [];
  const sink: ResumeSink = {
    chunk: (content, seq) => got.push(['chunk', `${seq}:${content}`]),
    reset: () => got.push(['reset']),
    end: (r: ChatResponse) => got.push(['end', r.response]),
    failed: (code, r) => got.push(['failed', `${code}${r ? `:${r.response}` : ''}`]),
    error: (err) => got.push(['error', err.code]),
  };
  return { got, sink };
}

function run(frames: Frame[], lastSeq: number) {
  const { got, sink } = recorder();
  const replay = new AnswerReplay(RID, lastSeq, sink);
  const steps = frames.map((f) => replay.feed(encodeFrames([f])));
  return { got, last: steps.at(-1) };
}

describe('AnswerReplay', () => {
  it('sends the chunks after last_seq once, in order, then the whole answer', () => {
    const frames: Frame[] = [{ type: 'ack', ...base(), worker_id: 'w' }, chunk(0, 'a'), chunk(1, 'b'), chunk(2, 'c'), done(3)];
    expect(run(frames, 0)).toEqual({ got: [['chunk', '1:b'], ['chunk', '2:c'], ['end', 'abc']], last: 'ended' });
    expect(run(frames, 2).got).toEqual([['end', 'abc']]);
    expect(run(frames, -1).got.map((g) => g[1])).toEqual(['0:a', '1:b', '2:c', 'abc']);
  });

  it("takes the model lane's first delivery after the lookup lane's queued frame as the same answer (no reset)", () => {
    const frames: Frame[] = [
      { type: 'ack', ...base(), worker_id: 'w' },
      { type: 'queued', ...base(), redelivery_ms: 1_000 },
      chunk(0, 'a', 0, 1),
      chunk(1, 'b', 0, 1),
      done(2, 0, 1),
    ];
    expect(run(frames, 0).got).toEqual([['chunk', '1:b'], ['end', 'ab']]);
  });

  it('a new attempt after chunks: the client is told to reset and gets the new answer from seq 0', () => {
    const frames: Frame[] = [chunk(0, 'x'), chunk(1, 'y'), { type: 'ack', ...base(1), worker_id: 'w2' }, chunk(0, 'a', 1), done(1, 1)];
    expect(run(frames, 1).got).toEqual([['reset'], ['chunk', '0:a'], ['end', 'a']]);
    // A `reset` frame (the worker's model failed over) too; stale frames of the old attempt are ignored.
    const reset: Frame[] = [chunk(0, 'x', 1), { type: 'reset', ...base(1) }, chunk(0, 'old', 0), chunk(0, 'b', 1), done(1, 1)];
    expect(run(reset, 0).got).toEqual([['reset'], ['chunk', '0:b'], ['end', 'b']]);
  });

  it('chunks the log no longer has: expired (the missed ones), or the final record (the client has them all)', () => {
    // The log starts at seq 3: a client at seq 0 misses 1 and 2.
    expect(run([chunk(3, 'd'), chunk(4, 'e'), done(5)], 0)).toEqual({ got: [], last: 'expired' });
    // A client at seq 2 misses nothing, but the whole text is not in the log.
    expect(run([chunk(3, 'd'), chunk(4, 'e'), done(5)], 2)).toEqual({ got: [['chunk', '3:d'], ['chunk', '4:e']], last: 'need_final' });
  });

  it("passes a worker's final error on, and waits out one its gateway retries", () => {
    expect(run([chunk(0, 'a'), { type: 'error', ...base(), code: 'upstream_error', message: 'x', retryable: true }], -1).got).toEqual([
      ['chunk', '0:a'],
      ['error', 'upstream_error'],
    ]);
    expect(run([{ type: 'error', ...base(), code: 'worker_lost', message: 'x', retryable: true }], -1)).toEqual({ got: [], last: 'more' });
  });
});

describe('MemoryAnswerLog', () => {
  const subject = Subjects.chatRetained('gw', RID);

  it('keeps at most the per-answer bytes and the window, the oldest going first, and replays then follows', async () => {
    const bus = new InProcessBus();
    const log = new MemoryAnswerLog(bus, { windowMs: 300, maxBytesPerAnswer: 1_000, storeMaxBytes: 10_000, answerTtlMs: 1_000 });
    await log.start();
    const data = (i: number) => new TextEncoder().encode(String(i).padStart(400, '0'));
    for (let i = 0; i < 5; i++) bus.publish(subject, data(i));
    await bus.flush();
    const seen: string[] = [];
    const feed = await log.follow(subject, (d) => seen.push(new TextDecoder().decode(d).replace(/^0+/, '') || '0'), () => {});
    expect(seen).toEqual(['3', '4']); // 2 × 400 bytes fit in 1000
    bus.publish(subject, data(5));
    await bus.flush();
    expect(seen).toEqual(['3', '4', '5']);
    feed.stop();
    expect(log.bytes).toBeLessThanOrEqual(1_000);
    await sleep(350);
    expect(await log.hasFrames(subject)).toBe(false);
    expect(log.bytes).toBe(0);
    await log.close();
    await bus.close();
  });

  it('follows an answer of which nothing is retained yet: its first messages come to the follower', async () => {
    const bus = new InProcessBus();
    const log = new MemoryAnswerLog(bus, { windowMs: 60_000, maxBytesPerAnswer: 1_000, storeMaxBytes: 10_000, answerTtlMs: 1_000 });
    await log.start();
    const seen: string[] = [];
    const feed = await log.follow(subject, (d) => seen.push(new TextDecoder().decode(d)), () => {});
    bus.publish(subject, new TextEncoder().encode('first batch'));
    await bus.flush();
    expect(seen).toEqual(['first batch']);
    feed.stop();
    await log.close();
    await bus.close();
  });

  it('bounds all answers together: the oldest answer goes first', async () => {
    const bus = new InProcessBus();
    const log = new MemoryAnswerLog(bus, { windowMs: 60_000, maxBytesPerAnswer: 1_000_000, storeMaxBytes: 2_000, answerTtlMs: 1_000 });
    await log.start();
    for (let i = 0; i < 5; i++) bus.publish(Subjects.chatRetained('gw', `r${i}`), new Uint8Array(900));
    await bus.flush();
    expect(log.bytes).toBeLessThanOrEqual(2_000);
    expect(await log.hasFrames(Subjects.chatRetained('gw', 'r0'))).toBe(false);
    expect(await log.hasFrames(Subjects.chatRetained('gw', 'r4'))).toBe(true);
    await log.close();
    await bus.close();
  });
});

describe('ResumeDesk', () => {
  it('makes the log again after the bus reconnects (a restarted NATS server lost its memory streams)', async () => {
    const listeners: Array<(s: BusState) => void> = [];
    const bus = {
      kind: 'nats',
      subscribe: () => ({ unsubscribe() {} }),
      publish() {},
      state: () => 'connected',
      onStateChange(l: (s: BusState) => void) {
        listeners.push(l);
        return () => {};
      },
    } as unknown as Bus;
    let starts = 0;
    const log = { kind: 'jetstream', start: async () => void (starts += 1), close: async () => {} } as unknown as AnswerLog;
    const resumes = new Counter({ name: 'ai_resumes_total', help: 'h', labelNames: ['outcome'] as const, registers: [new Registry()] });
    const desk = new ResumeDesk({
      bus,
      log,
      gatewayId: 'gw',
      config: { windowMs: 1_000, maxBytesPerAnswer: 65_536, storeMaxBytes: 1 << 20, graceMs: 0, answerTtlMs: 1_000 },
      silenceLimitMs: 1_000,
      requestTimeoutMs: 1_000,
      logger: createLogger({ service: 'test', version: '0', level: 'silent', pretty: false }),
      resumes,
    });
    desk.start();
    await waitFor(() => starts === 1, 1_000, 'the first start');
    for (const l of listeners) l('connected');
    await sleep(10);
    expect(starts).toBe(1); // connected without an outage: nothing to do
    for (const l of listeners) l('reconnecting');
    for (const l of listeners) l('connected');
    await waitFor(() => starts === 2, 1_000, 'the start after the reconnection');
    desk.close();
  });
});

describe('resume on the in-process bus (the embedded mode)', () => {
  let g: TestGateway | undefined;
  const workers: FakeWorker[] = [];
  afterEach(async () => {
    for (const w of workers.splice(0)) w.stop();
    await g?.close();
    g = undefined;
  });

  async function gateway(graceMs: number): Promise<TestGateway> {
    const probe = await startTestGateway();
    const resume = { ...probe.config.resume, graceMs };
    await probe.close();
    g = await startTestGateway({ resume });
    return g;
  }

  /** A worker that sends two chunks, heartbeats until `gate.open` (or a cancel), then the rest. */
  function gatedWorker(bus: InProcessBus, gate: { open: boolean }, cancels?: CancelRecorder) {
    workers.push(
      new FakeWorker(bus, {
        script: async (ctl) => {
          ctl.chunk('Hello');
          ctl.chunk(', ');
          while (!gate.open) {
            if (cancels?.has(ctl.job.request_id)) return;
            ctl.heartbeat();
            await sleep(20);
          }
          ctl.chunk('world');
          ctl.chunk('!');
          ctl.done();
        },
      }),
    );
  }

  it('a socket cut mid-answer: the answer runs on, and a new socket resumes it exactly once', async () => {
    const gw = await gateway(5_000);
    const cancels = new CancelRecorder(gw.bus);
    const gate = { open: false };
    gatedWorker(gw.bus, gate);
    const first = await TestSocket.open(`${gw.wsUrl}/ws/assistant/s1?user_id=ana`);
    first.send({ message: 'hi' });
    const got: SocketMessage[] = [];
    while (got.filter((m) => m.type === 'stream_chunk').length < 2) got.push(await first.next());
    const requestId = String(got[0]!.request_id);
    first.ws.terminate();
    await waitFor(() => first.closeCode !== undefined, 1_000, 'the close');
    await sleep(50);
    expect(cancels.has(requestId)).toBe(false);

    const again = await TestSocket.open(`${gw.wsUrl}/ws/assistant/s1?user_id=ana`);
    again.send({ type: 'resume', request_id: requestId, last_seq: 1 });
    await sleep(20);
    gate.open = true;
    const rest = await again.until('response');
    expect(rest.map((m) => (m.type === 'stream_chunk' ? `${String(m.seq)}:${String(m.content)}` : m.type))).toEqual(['2:world', '3:!', 'stream_end', 'response']);
    expect(rest.at(-1)).toMatchObject({ response: 'Hello, world!', request_id: requestId });

    // Another user of the open demo naming someone else is refused; a finished answer resumes from its record.
    const other = await TestSocket.open(`${gw.wsUrl}/ws/assistant/s2?user_id=bo`);
    other.send({ type: 'resume', request_id: requestId, last_seq: -1 });
    expect(await other.next()).toMatchObject({ type: 'resume_failed', code: 'resume_forbidden' });
    again.send({ type: 'resume', request_id: requestId, last_seq: 3 });
    expect((await again.until('response')).map((m) => m.type)).toEqual(['stream_end', 'response']);
    await Promise.all([again.close(), other.close()]);
    expect(cancels.has(requestId)).toBe(false);
  });

  it('cancel on the socket that resumed stops the answer where it runs', async () => {
    const gw = await gateway(5_000);
    const cancels = new CancelRecorder(gw.bus);
    gatedWorker(gw.bus, { open: false }, cancels);
    const first = await TestSocket.open(`${gw.wsUrl}/ws/assistant/s4?user_id=eve`);
    first.send({ message: 'hi' });
    const [start] = await first.until('stream_start');
    const requestId = String(start!.request_id);
    first.ws.terminate();
    const again = await TestSocket.open(`${gw.wsUrl}/ws/assistant/s4?user_id=eve`);
    again.send({ type: 'resume', request_id: requestId, last_seq: -1 });
    expect((await again.until('stream_chunk')).at(-1)).toMatchObject({ seq: 0, content: 'Hello' });
    expect(cancels.has(requestId)).toBe(false);
    again.send({ type: 'cancel' });
    expect((await again.until('error')).at(-1)).toMatchObject({ type: 'error', code: 'cancelled', request_id: requestId });
    await waitFor(() => cancels.has(requestId), 2_000, 'the cancel');
    expect(cancels.of(requestId)).toEqual([{ reason: 'client_gone' }]);
    await waitFor(() => gw.gateway.dispatcher.inFlight === 0, 1_000, 'the turn to end');
    // The socket is free for a new turn.
    again.send({ type: 'ping' });
    expect((await again.until('pong')).at(-1)).toMatchObject({ type: 'pong' });
    await again.close();
  });

  it('nobody resumes: the answer is cancelled after the grace (client_gone)', async () => {
    const gw = await gateway(150);
    const cancels = new CancelRecorder(gw.bus);
    gatedWorker(gw.bus, { open: false }, cancels);
    const ws = await TestSocket.open(`${gw.wsUrl}/ws/assistant/s3?user_id=cy`);
    ws.send({ message: 'hi' });
    const [start] = await ws.until('stream_start');
    await ws.close();
    await waitFor(() => cancels.has(String(start!.request_id)), 2_000, 'the cancel');
    expect(cancels.of(String(start!.request_id))).toEqual([{ reason: 'client_gone' }]);
    await waitFor(() => gw.gateway.dispatcher.inFlight === 0, 1_000, 'the turn to end');
  });

  it('SSE: every event has an id, and GET /api/assistant/streams/{id} resumes after Last-Event-ID', async () => {
    const gw = await gateway(5_000);
    workers.push(new FakeWorker(gw.bus, { script: (ctl) => ctl.answer(['one ', 'two ', 'three']) }));
    const res = await fetch(`${gw.baseUrl}/api/assistant/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', 'x-request-id': 'sse-resume-1' },
      body: JSON.stringify({ user_id: 'dee', message: 'hi' }),
    });
    const text = await res.text();
    const ids = [...text.matchAll(/^id: (.*)$/gm)].map((m) => m[1]);
    expect(ids).toEqual(['sse-resume-1:-1', 'sse-resume-1:0', 'sse-resume-1:1', 'sse-resume-1:2', 'sse-resume-1:2']);
    const resumed = await fetch(`${gw.baseUrl}/api/assistant/streams/sse-resume-1?user_id=dee`, { headers: { 'last-event-id': 'sse-resume-1:0' } });
    const events = [...(await resumed.text()).matchAll(/^event: (.*)\ndata: (.*)$/gm)].map((m) => [m[1], JSON.parse(m[2]!)]);
    expect(events.map((e) => e[0])).toEqual(['start', 'chunk', 'chunk', 'done']);
    expect(events[3]![1]).toMatchObject({ response: 'one two three' });
    expect((await fetch(`${gw.baseUrl}/api/assistant/streams/sse-resume-1?user_id=dee&last_seq=x`)).status).toBe(400);
    expect((await fetch(`${gw.baseUrl}/api/assistant/streams/nope?user_id=dee`)).status).toBe(404);
  });
});
