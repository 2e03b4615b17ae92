import type { Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { FakeWorker, answerWith, getJson, metricValue, postJson, sleep, startTestGateway, type SocketMessage, type TestGateway, TestSocket } from '@actionedx/testkit';
import { loadGatewayConfig } from '../config.js';

/**
 * Collaboration sessions on one gateway (in-process bus, memory store): the REST membership rules, who may open
 * a socket, and what every member sees of a turn. Across gateway processes: test/integration/collab-sessions.test.ts.
 */

let gw: TestGateway;
let sockets: TestSocket[];
let workers: FakeWorker[];

beforeEach(async () => {
  gw = await startTestGateway({ sessions: { maxMembers: 3, presenceTtlMs: 600, turnLeaseMs: 5_000, ttlSeconds: 3_600 } });
  sockets = [];
  workers = [];
});
afterEach(async () => {
  for (const w of workers) w.stop();
  await Promise.all(sockets.map((s) => s.close()));
  await gw.close();
});

const api = (path: string) => `${gw.baseUrl}${path}`;
const del = (path: string) => fetch(api(path), { method: 'DELETE' });

async function createSession(owner = 'alice'): Promise<{ session_id: string; join_token: string }> {
  const res = await postJson(api('/api/sessions'), { user_id: owner, title: 'Strategy review', mode: 'ally' });
  expect(res.status).toBe(201);
  return res.body as { session_id: string; join_token: string };
}

const open = async (sessionId: string, user: string): Promise<TestSocket> => {
  const s = await TestSocket.open(`${gw.wsUrl}/ws/assistant/${sessionId}?user_id=${user}`);
  sockets.push(s);
  return s;
};

const upgradeStatus = (path: string): Promise<number> =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(gw.wsUrl + path);
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('open', () => reject(new Error('the upgrade was accepted')));
    ws.once('error', () => undefined);
  });

/**
 * A worker that sends `before`, keeps working (heartbeats) until the test calls `finish()`, then sends `after`
 * and ends the answer.
 */
function gatedWorker(before: string[], after: string[]): { worker: FakeWorker; finish(): void } {
  let released = false;
  const worker = new FakeWorker(gw.bus, {
    script: async (ctl) => {
      for (const c of before) ctl.chunk(c);
      while (!released) {
        ctl.heartbeat();
        await sleep(20);
      }
      for (const c of after) ctl.chunk(c);
      ctl.done();
    },
  });
  workers.push(worker);
  return { worker, finish: () => (released = true) };
}

/** Reads until a message satisfies `pred`, returning it (the others read on the way are dropped). */
async function readUntil(s: TestSocket, pred: (m: SocketMessage) => boolean, timeoutMs = 3_000, seen?: SocketMessage[]): Promise<SocketMessage> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const m = await s.next(Math.max(1, end - Date.now()));
    seen?.push(m);
    if (pred(m)) return m;
  }
}

/** The frames of one turn (presence and notices left out), up to its `response` or `error`. */
async function turnFrames(s: TestSocket): Promise<SocketMessage[]> {
  const out: SocketMessage[] = [];
  for (;;) {
    const m = await s.next();
    if (m.type === 'presence' || m.type === 'system' || m.type === 'typing') continue;
    out.push(m);
    if (m.type === 'response' || m.type === 'error') return out;
  }
}

const presenceOf = (m: SocketMessage, user: string): { online: boolean } | undefined =>
  m.type === 'presence' ? (m.members as Array<{ user_id: string; online: boolean }>).find((x) => x.user_id === user) : undefined;
const online = (m: SocketMessage, user: string): boolean =>
  m.type === 'presence' && (m.members as Array<{ user_id: string; online: boolean }>).some((x) => x.user_id === user && x.online);

describe('collaboration sessions: membership over REST', () => {
  it('creates, joins with the token, invites, lists, limits and removes', async () => {
    const { session_id, join_token } = await createSession();
    expect(session_id).toMatch(/^cs_[0-9a-f]{32}$/);

    const bad = await postJson(api(`/api/sessions/${session_id}/join`), { user_id: 'mallory', join_token: 'x'.repeat(32) });
    expect(bad.status).toBe(403);
    expect(bad.body.error.code).toBe('invalid_join_token');
    const joined = await postJson(api(`/api/sessions/${session_id}/join`), { user_id: 'bob', join_token });
    expect(joined.status).toBe(200);
    expect(joined.body).toMatchObject({ session_id, user_id: 'bob', role: 'member', mode: 'ally' });

    const outsider = await getJson(api(`/api/sessions/${session_id}/members?user_id=mallory`));
    expect(outsider.status).toBe(403);
    expect(outsider.body.error.code).toBe('not_a_member');
    const byMember = await postJson(api(`/api/sessions/${session_id}/members?user_id=bob`), { user_id: 'carol' });
    expect(byMember.status).toBe(403);
    expect(byMember.body.error.code).toBe('forbidden');

    expect((await postJson(api(`/api/sessions/${session_id}/members?user_id=alice`), { user_id: 'carol' })).status).toBe(201);
    const full = await postJson(api(`/api/sessions/${session_id}/members?user_id=alice`), { user_id: 'dave' });
    expect(full.status).toBe(409);
    expect(full.body.error.code).toBe('session_full');

    const list = await getJson(api(`/api/sessions/${session_id}/members?user_id=bob`));
    expect(list.status).toBe(200);
    expect(list.body.members).toEqual([
      { user_id: 'alice', role: 'owner', online: false, connections: 0 },
      { user_id: 'bob', role: 'member', online: false, connections: 0 },
      { user_id: 'carol', role: 'member', online: false, connections: 0 },
    ]);

    expect((await del(`/api/sessions/${session_id}/members/carol?user_id=bob`)).status).toBe(403);
    expect((await del(`/api/sessions/${session_id}/members/alice?user_id=alice`)).status).toBe(403);
    expect((await del(`/api/sessions/${session_id}/members/bob?user_id=bob`)).status).toBe(204);
    expect((await getJson(api(`/api/sessions/${session_id}/members?user_id=bob`))).status).toBe(403);
    expect((await getJson(api(`/api/sessions/cs_${'0'.repeat(32)}/members?user_id=bob`))).status).toBe(404);
  });

  it('refuses a non-member socket (403) and an unknown collaboration id (404); other ids stay single-user sessions', async () => {
    const { session_id } = await createSession();
    expect(await upgradeStatus(`/ws/assistant/${session_id}?user_id=mallory`)).toBe(403);
    expect(await upgradeStatus(`/ws/assistant/${session_id}`)).toBe(403);
    expect(await upgradeStatus(`/ws/assistant/cs_${'1'.repeat(32)}?user_id=alice`)).toBe(404);
    const single = await open('my-own-session', 'mallory');
    single.send({ type: 'typing', is_typing: true });
    expect(await single.next()).toMatchObject({ type: 'typing', user_id: 'mallory' });
  });
});

describe('collaboration sessions: what every member sees', () => {
  it("fans a member's turn and the streamed answer out to every member, once each, in one order", async () => {
    const { session_id, join_token } = await createSession();
    await postJson(api(`/api/sessions/${session_id}/join`), { user_id: 'bob', join_token });
    const { worker: w, finish } = gatedWorker(['Hello ', 'team'], ['!']);
    const alice = await open(session_id, 'alice');
    const bob = await open(session_id, 'bob');
    await readUntil(alice, (m) => online(m, 'bob'));
    await readUntil(bob, (m) => online(m, 'alice'));

    bob.send({ type: 'typing', is_typing: true });
    expect(await readUntil(alice, (m) => m.type === 'typing')).toMatchObject({ user_id: 'bob', is_typing: true });

    alice.send({ message: 'What is our next step?' });
    const seenByBob: SocketMessage[] = [];
    const first = await readUntil(bob, (m) => m.type === 'stream_chunk', 3_000, seenByBob);
    expect(first.content).toBe('Hello ');
    // Bob's message while Alice's turn is answered: refused, to Bob only.
    bob.send({ message: 'Me too' });
    const busy = await readUntil(bob, (m) => m.type === 'error', 3_000, seenByBob);
    expect(busy.code).toBe('session_busy');
    finish();

    const seenByAlice = await turnFrames(alice);
    await readUntil(bob, (m) => m.type === 'response', 3_000, seenByBob);
    const kinds = (frames: SocketMessage[]) =>
      frames
        .filter((m) => m.type !== 'presence' && m.type !== 'typing' && m.type !== 'error')
        .map((m) => (m.type === 'stream_chunk' ? `chunk:${String(m.content)}` : m.type));
    const expected = ['turn', 'stream_start', 'chunk:Hello ', 'chunk:team', 'chunk:!', 'stream_end', 'response'];
    expect(kinds(seenByAlice)).toEqual(expected);
    expect(kinds(seenByBob)).toEqual(expected);
    expect(seenByBob.filter((m) => m.type === 'error')).toHaveLength(1);
    const rest = seenByBob;
    expect(seenByAlice[0]).toMatchObject({ type: 'turn', user_id: 'alice', message: 'What is our next step?', mode: 'ally', session_id });
    expect(seenByAlice.at(-1)!.response).toBe('Hello team!');
    expect(rest.at(-1)!.response).toBe('Hello team!');
    expect(w.jobs).toHaveLength(1);
    expect(await metricValue(gw.registry, 'session_turns_refused_total', { reason: 'session_busy' })).toBe(1);
    expect(await metricValue(gw.registry, 'session_members_connected')).toBe(2);
    expect(await metricValue(gw.registry, 'session_presence_changes_total', { change: 'join' })).toBe(2);

    // The turn is over: Bob's turn now goes through, and Alice sees it.
    w.stop();
    workers.push(new FakeWorker(gw.bus, { id: 'worker-b', script: answerWith(['Noted.']) }));
    bob.send({ message: 'Then we write it down.' });
    const bobTurn = await turnFrames(alice);
    expect(bobTurn[0]).toMatchObject({ type: 'turn', user_id: 'bob' });
    expect(bobTurn.at(-1)).toMatchObject({ type: 'response', response: 'Noted.' });
  });

  it("any member may resume the session's answer on a new socket; a socket outside the session may not", async () => {
    const { session_id, join_token } = await createSession();
    await postJson(api(`/api/sessions/${session_id}/join`), { user_id: 'bob', join_token });
    const { finish } = gatedWorker(['One ', 'two '], ['three.']);
    const alice = await open(session_id, 'alice');
    const bob = await open(session_id, 'bob');
    await readUntil(bob, (m) => online(m, 'alice'));
    alice.send({ message: 'Count to three' });
    const turn = await readUntil(bob, (m) => m.type === 'turn');
    const requestId = String(turn.request_id);
    await readUntil(bob, (m) => m.type === 'stream_chunk' && m.seq === 1);
    // Bob's connection drops; he comes back on a new socket and resumes Alice's answer after the first chunk.
    await bob.close();
    const again = await open(session_id, 'bob');
    again.send({ type: 'resume', request_id: requestId, last_seq: 0 });
    expect(await readUntil(again, (m) => m.type === 'stream_chunk')).toMatchObject({ content: 'two ', seq: 1 });
    finish();
    const rest: SocketMessage[] = [];
    const end = await readUntil(again, (m) => m.type === 'response', 3_000, rest);
    expect(rest.filter((m) => m.type === 'stream_chunk').map((m) => m.content)).toEqual(['three.']);
    expect(end.response).toBe('One two three.');
    // Exactly once: the session's live frames of the same answer are not sent to this socket a second time.
    again.send({ type: 'ping' });
    const afterEnd: SocketMessage[] = [];
    await readUntil(again, (m) => m.type === 'pong', 3_000, afterEnd);
    expect(afterEnd.filter((m) => ['stream_start', 'stream_chunk', 'stream_end', 'response'].includes(String(m.type)))).toEqual([]);

    // Bob on a single-user session of his own is not in the collaboration session: refused.
    const outside = await open('bobs-own-session', 'bob');
    outside.send({ type: 'resume', request_id: requestId, last_seq: -1 });
    expect(await readUntil(outside, (m) => m.type === 'resume_failed')).toMatchObject({ code: 'resume_forbidden' });
  });

  it('announces mode switches, joins and removals; a removed member is disconnected; presence follows', async () => {
    const { session_id, join_token } = await createSession();
    await postJson(api(`/api/sessions/${session_id}/join`), { user_id: 'bob', join_token });
    const alice = await open(session_id, 'alice');
    const bob = await open(session_id, 'bob');
    await readUntil(alice, (m) => online(m, 'bob'));

    alice.send({ type: 'mode_switch', mode: 'oracle' });
    expect(await readUntil(bob, (m) => m.type === 'system')).toMatchObject({ event: 'mode_switched', mode: 'oracle', user_id: 'alice' });

    await postJson(api(`/api/sessions/${session_id}/join`), { user_id: 'carol', join_token });
    expect(await readUntil(bob, (m) => m.type === 'system' && m.event === 'member_joined')).toMatchObject({ user_id: 'carol' });

    expect((await del(`/api/sessions/${session_id}/members/bob?user_id=alice`)).status).toBe(204);
    expect(await readUntil(alice, (m) => m.type === 'system' && m.event === 'member_left')).toMatchObject({ user_id: 'bob' });
    await readUntil(bob, () => false, 3_000).catch(() => undefined);
    expect(bob.closeCode).toBe(4403);
    const after = await readUntil(alice, (m) => m.type === 'presence' && !(m.members as Array<{ user_id: string }>).some((x) => x.user_id === 'bob'));
    expect(after.members).toEqual([
      { user_id: 'alice', role: 'owner', online: true, connections: 1 },
      { user_id: 'carol', role: 'member', online: false, connections: 0 },
    ]);
  });

  it("a member who stops reading is closed at its own send-buffer cap; the others get the whole answer", async () => {
    await gw.close();
    const edge = loadGatewayConfig({ NODE_ENV: 'test' }, { defaultAuthMode: 'open' }).edge;
    gw = await startTestGateway({
      sessions: { maxMembers: 3, presenceTtlMs: 600, turnLeaseMs: 5_000, ttlSeconds: 3_600 },
      edge: { ...edge, wsSendBufferBytes: 256 * 1024 },
    });
    const { session_id, join_token } = await createSession();
    for (const user of ['bob', 'carol']) await postJson(api(`/api/sessions/${session_id}/join`), { user_id: user, join_token });
    const chunk = 'x'.repeat(32 * 1024);
    const CHUNKS = 200; // 6.4 MiB: far past what the kernel and the cap hold for a socket that does not read
    workers.push(
      new FakeWorker(gw.bus, {
        script: async (ctl) => {
          for (let i = 0; i < CHUNKS; i++) {
            ctl.chunk(chunk);
            if (i % 8 === 0) await sleep(1);
          }
          ctl.done();
        },
      }),
    );
    const alice = await open(session_id, 'alice');
    const bob = await open(session_id, 'bob');
    const carol = await open(session_id, 'carol');
    await readUntil(bob, (m) => online(m, 'carol'));
    const carolRaw = (carol.ws as unknown as { _socket: Socket })._socket;
    carolRaw.pause();

    alice.send({ message: 'A very long answer, please.' });
    const seen: SocketMessage[] = [];
    await readUntil(bob, (m) => m.type === 'response', 15_000, seen);
    expect(seen.filter((m) => m.type === 'stream_chunk')).toHaveLength(CHUNKS);
    await readUntil(alice, (m) => m.type === 'response', 15_000);
    await expect.poll(() => metricValue(gw.registry, 'websocket_closes_total', { reason: 'send_buffer_full' }), { timeout: 5_000 }).toBe(1);
    carolRaw.resume();
    carol.ws.terminate();
  });

  it("the answer goes on to the others when its sender's socket goes away", async () => {
    const { session_id, join_token } = await createSession();
    await postJson(api(`/api/sessions/${session_id}/join`), { user_id: 'bob', join_token });
    const { finish } = gatedWorker(['Half '], ['and the rest.']);
    const alice = await open(session_id, 'alice');
    const bob = await open(session_id, 'bob');
    await readUntil(alice, (m) => online(m, 'bob'));
    alice.send({ message: 'Tell the team.' });
    await readUntil(bob, (m) => m.type === 'stream_chunk');
    await alice.close();
    await readUntil(bob, (m) => presenceOf(m, 'alice')?.online === false);
    finish();
    const response = await readUntil(bob, (m) => m.type === 'response' || m.type === 'error');
    expect(response).toMatchObject({ type: 'response', response: 'Half and the rest.' });
  });
});
