import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  authHeaders,
  sampleValue,
  startStack,
  TestSocket,
  until,
  type ServiceProcess,
  type SocketMessage,
  type Stack,
} from '@actionedx/testkit';

/**
 * Resuming a streamed answer on another gateway: two (or three) gateway processes on one NATS (JetStream keeps
 * the frames) and one Redis, the orchestrator and a slow mock LLM as processes, authentication required.
 */

const RUN = randomUUID().slice(0, 6);
const u = (name: string) => `${name}-${RUN}`;
const unique = (what: string) => `${what} ${randomUUID()}`;
/** 60 tokens at 30 per second: two seconds of answer, so a cut after the first chunks lands mid-answer. */
const SLOW_LLM = { MOCK_LLM_TOKENS_PER_SECOND: '30', MOCK_LLM_COMPLETION_TOKENS: '60' };

const wsUrl = (gw: ServiceProcess, session: string) => `${gw.url.replace('http', 'ws')}/ws/assistant/${session}`;

async function openSocket(gw: ServiceProcess, session: string, user: string): Promise<TestSocket> {
  return TestSocket.open(wsUrl(gw, session), await authHeaders(user));
}

/** Reads until the first message of one of `types` (included), bounded in time. */
async function readUntil(socket: TestSocket, types: string[], timeoutMs = 15_000): Promise<SocketMessage[]> {
  const out: SocketMessage[] = [];
  for (;;) {
    const m = await socket.next(timeoutMs);
    out.push(m);
    if (types.includes(m.type)) return out;
  }
}

/** The text of `stream_chunk`s, with every `seq` checked: from 0 (or after `after`), no gap, no repeat; a reset starts again. */
function joinChunks(messages: SocketMessage[], after = -1): { text: string; seqs: number[] } {
  let parts: string[] = [];
  let seqs: number[] = [];
  let expected = after + 1;
  for (const m of messages) {
    if (m.type === 'stream_reset') {
      parts = [];
      seqs = [];
      expected = 0;
    }
    if (m.type !== 'stream_chunk') continue;
    expect(m.seq, 'chunks in order, none missing or repeated').toBe(expected);
    expected += 1;
    parts.push(String(m.content));
    seqs.push(Number(m.seq));
  }
  return { text: parts.join(''), seqs };
}

/** An uninterrupted client's answer to `message` (a fresh session): what a resumed answer must equal. */
async function uninterrupted(gw: ServiceProcess, user: string, message: string): Promise<string> {
  const ws = await openSocket(gw, `ref-${randomUUID().slice(0, 8)}`, user);
  ws.send({ message, use_cache: false });
  const messages = await readUntil(ws, ['response', 'error']);
  await ws.close();
  const response = messages.at(-1)!;
  expect(response.type).toBe('response');
  expect(joinChunks(messages).text).toBe(response.response);
  return String(response.response);
}

/** Starts a turn on `gw` and cuts the connection (no close frame, as a network drop) after `chunks` chunks. */
async function cutMidAnswer(gw: ServiceProcess, session: string, user: string, message: string, chunks: number) {
  const ws = await openSocket(gw, session, user);
  ws.send({ message, use_cache: false });
  const got: SocketMessage[] = [];
  while (got.filter((m) => m.type === 'stream_chunk').length < chunks) got.push(await ws.next(15_000));
  ws.ws.terminate();
  const start = got.find((m) => m.type === 'stream_start')!;
  expect(got.some((m) => m.type === 'response'), 'the cut came before the end').toBe(false);
  const { text, seqs } = joinChunks(got);
  return { requestId: String(start.request_id), text, lastSeq: seqs.at(-1)! };
}

async function resumes(gw: ServiceProcess, outcome: string): Promise<number> {
  const text = await (await fetch(`${gw.opsUrl}/metrics`)).text();
  return sampleValue(text, 'ai_resumes_total', { outcome }) ?? 0;
}

describe('resume on another gateway (window 2 minutes)', () => {
  let stack: Stack;
  let a: ServiceProcess;
  let b: ServiceProcess;

  beforeAll(async () => {
    stack = await startStack({ orchestrators: 1, mockLlmEnv: SLOW_LLM });
    a = stack.gateway;
    b = await stack.addGateway();
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('a WebSocket cut mid-answer resumes on the other gateway: the same text, every seq once, in order', async () => {
    const user = u('ana');
    const message = unique('Explain formative assessment at length');
    const reference = await uninterrupted(a, user, message);
    const session = `s-${randomUUID().slice(0, 8)}`;
    const cut = await cutMidAnswer(a, session, user, message, 3);
    const okBefore = await resumes(b, 'ok');

    const ws = await openSocket(b, session, user);
    ws.send({ type: 'resume', request_id: cut.requestId, last_seq: cut.lastSeq });
    const rest = await readUntil(ws, ['response', 'resume_failed', 'error']);
    await ws.close();

    expect(rest.map((m) => m.type).filter((t) => t !== 'stream_chunk')).toEqual(['stream_end', 'response']);
    const resumed = joinChunks(rest, cut.lastSeq);
    expect(resumed.seqs.length).toBeGreaterThan(0);
    expect(cut.text + resumed.text).toBe(reference);
    expect(rest.at(-1)).toMatchObject({ type: 'response', request_id: cut.requestId, response: reference });
    expect(await resumes(b, 'ok')).toBe(okBefore + 1);
  });

  it('resumes from nothing (last_seq -1) on the same gateway: the whole answer once', async () => {
    const user = u('bo');
    const session = `s-${randomUUID().slice(0, 8)}`;
    const cut = await cutMidAnswer(a, session, user, unique('Describe the tri-core loop'), 1);
    const ws = await openSocket(a, session, user);
    ws.send({ type: 'resume', request_id: cut.requestId, last_seq: -1 });
    const rest = await readUntil(ws, ['response', 'resume_failed', 'error']);
    await ws.close();
    const all = joinChunks(rest);
    expect(all.seqs[0]).toBe(0);
    expect(rest.at(-1)).toMatchObject({ type: 'response', response: all.text });
  });

  it('refuses another user (resume_forbidden), and an id nobody knows (resume_unknown)', async () => {
    const session = `s-${randomUUID().slice(0, 8)}`;
    const cut = await cutMidAnswer(a, session, u('owner'), unique('A private answer'), 1);
    const refusedBefore = await resumes(b, 'refused');
    const intruder = await openSocket(b, `s-${randomUUID().slice(0, 8)}`, u('intruder'));
    intruder.send({ type: 'resume', request_id: cut.requestId, last_seq: -1 });
    const [failed] = await readUntil(intruder, ['resume_failed', 'stream_chunk', 'response', 'error']);
    expect(failed).toMatchObject({ type: 'resume_failed', request_id: cut.requestId, code: 'resume_forbidden' });
    expect(failed).not.toHaveProperty('response');
    expect(await resumes(b, 'refused')).toBe(refusedBefore + 1);

    intruder.send({ type: 'resume', request_id: randomUUID(), last_seq: -1 });
    expect((await readUntil(intruder, ['resume_failed', 'error'])).at(-1)).toMatchObject({ type: 'resume_failed', code: 'resume_unknown' });
    // Bad input is an error frame, and the socket stays usable.
    intruder.send({ type: 'resume', request_id: 'has.dots', last_seq: -1 });
    expect((await readUntil(intruder, ['resume_failed', 'error'])).at(-1)).toMatchObject({ type: 'error', code: 'validation_failed' });
    intruder.send({ type: 'ping' });
    expect((await readUntil(intruder, ['pong'])).at(-1)).toMatchObject({ type: 'pong' });
    await intruder.close();

    // Over SSE too, and without credentials not at all.
    const sse = await fetch(`${b.url}/api/assistant/streams/${cut.requestId}`, { headers: await authHeaders(u('intruder')) });
    expect(sse.status).toBe(403);
    expect(await sse.json()).toMatchObject({ error: { code: 'resume_forbidden' } });
    expect((await fetch(`${b.url}/api/assistant/streams/${cut.requestId}`)).status).toBe(401);
  });

  it('an SSE stream cut mid-answer resumes on the other gateway with Last-Event-ID', async () => {
    const user = u('cy');
    const headers = await authHeaders(user);
    const message = unique('Stream me a long answer');
    const controller = new AbortController();
    const first: Array<{ id: string; event: string; data: any }> = [];
    const res = await fetch(`${a.url}/api/assistant/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...headers },
      body: JSON.stringify({ message, use_cache: false }),
      signal: controller.signal,
    });
    await readSseWithIds(res.body!, (e) => {
      first.push(e);
      if (first.filter((x) => x.event === 'chunk').length === 4) controller.abort();
    }).catch(() => undefined);
    const chunks = first.filter((e) => e.event === 'chunk');
    expect(chunks).toHaveLength(4);
    const requestId = String(first[0]!.data.request_id);
    // Every event carries `<request_id>:<seq>`.
    expect(first.map((e) => e.id)).toEqual([`${requestId}:-1`, ...chunks.map((c) => `${requestId}:${c.data.seq}`)]);

    const rest: Array<{ id: string; event: string; data: any }> = [];
    const resumed = await fetch(`${b.url}/api/assistant/streams/${requestId}`, { headers: { ...headers, 'last-event-id': chunks.at(-1)!.id } });
    expect(resumed.status).toBe(200);
    await readSseWithIds(resumed.body!, (e) => rest.push(e));
    const more = rest.filter((e) => e.event === 'chunk');
    expect(more.map((e) => e.data.seq)).toEqual(more.map((_, i) => 4 + i));
    const done = rest.at(-1)!;
    expect(done.event).toBe('done');
    const text = [...chunks, ...more].map((e) => e.data.content).join('');
    expect(done.data.response).toBe(text);
    expect(rest.every((e) => e.id.startsWith(`${requestId}:`))).toBe(true);

    // A Last-Event-ID of another stream is bad input.
    const wrong = await fetch(`${b.url}/api/assistant/streams/${requestId}`, { headers: { ...headers, 'last-event-id': 'other:3' } });
    expect(wrong.status).toBe(400);
  });

  it('the gateway of the answer dies mid-answer: the client resumes on the other one', async () => {
    const doomed = await stack.addGateway();
    const user = u('dee');
    const message = unique('Answer while your gateway dies');
    const reference = await uninterrupted(b, user, message);
    const session = `s-${randomUUID().slice(0, 8)}`;
    const ws = await openSocket(doomed, session, user);
    ws.send({ message, use_cache: false });
    const got: SocketMessage[] = [];
    while (got.filter((m) => m.type === 'stream_chunk').length < 2) got.push(await ws.next(15_000));
    doomed.kill('SIGKILL');
    await doomed.exited;
    const cut = joinChunks(got);
    const requestId = String(got.find((m) => m.type === 'stream_start')!.request_id);

    const again = await openSocket(b, session, user);
    again.send({ type: 'resume', request_id: requestId, last_seq: cut.seqs.at(-1)! });
    const rest = await readUntil(again, ['response', 'resume_failed', 'error']);
    await again.close();
    expect(rest.at(-1)).toMatchObject({ type: 'response', response: reference });
    expect(cut.text + joinChunks(rest, cut.seqs.at(-1)).text).toBe(reference);
  });

  it("the seed's single-user client is unchanged: a turn without type streams and answers", async () => {
    const ws = await openSocket(b, `seed-${RUN}`, u('seed'));
    ws.send({ user_id: u('seed'), message: unique('Help me with 9-Pillar audit'), mode: 'strategist', context: { current_track: 'innovation-foundations' } });
    const messages = await readUntil(ws, ['response', 'error']);
    await ws.close();
    expect(messages[0]!.type).toBe('stream_start');
    expect(messages.at(-1)).toMatchObject({ type: 'response', response: joinChunks(messages).text });
  });
});

describe('resume past the window', () => {
  let stack: Stack;
  let b: ServiceProcess;
  const WINDOW_MS = 1_000;

  beforeAll(async () => {
    stack = await startStack({ orchestrators: 1, mockLlmEnv: SLOW_LLM, gatewayEnv: { RESUME_WINDOW_MS: String(WINDOW_MS) } });
    b = await stack.addGateway();
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('gets resume_failed (resume_expired) with the final answer', async () => {
    const user = u('late');
    const session = `s-${randomUUID().slice(0, 8)}`;
    const cut = await cutMidAnswer(stack.gateway, session, user, unique('An answer read too late'), 1);
    const headers = await authHeaders(user);
    // The answer runs to its end (its client may come back) and its chunks age out: SSE says 410 with the answer.
    let expired: any;
    await until(
      async () => {
        const res = await fetch(`${b.url}/api/assistant/streams/${cut.requestId}?last_seq=${cut.lastSeq}`, { headers });
        if (res.status !== 410) {
          await res.body?.cancel();
          return false;
        }
        expired = await res.json();
        return expired.response !== undefined;
      },
      20_000,
      'the chunks to age out',
    );
    expect(expired).toMatchObject({ error: { code: 'resume_expired' }, response: { request_id: cut.requestId } });
    expect(String(expired.response.response).startsWith(cut.text)).toBe(true);

    const expiredBefore = await resumes(b, 'expired');
    const ws = await openSocket(b, session, user);
    ws.send({ type: 'resume', request_id: cut.requestId, last_seq: cut.lastSeq });
    const [failed] = await readUntil(ws, ['resume_failed', 'stream_chunk', 'response', 'error']);
    await ws.close();
    expect(failed).toMatchObject({ type: 'resume_failed', code: 'resume_expired', response: { response: expired.response.response } });
    expect(await resumes(b, 'expired')).toBe(expiredBefore + 1);
  });
});

/** Reads SSE events with their `id` lines. */
async function readSseWithIds(body: ReadableStream<Uint8Array>, onEvent: (e: { id: string; event: string; data: any }) => void): Promise<void> {
  const decoder = new TextDecoder();
  let buf = '';
  for await (const part of body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(part, { stream: true });
    let sep;
    while ((sep = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, sep);
      buf = buf.slice(sep + 2);
      let id = '';
      let event = 'message';
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('id: ')) id = line.slice(4);
        else if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      if (data) onEvent({ id, event, data: JSON.parse(data) });
    }
  }
}
