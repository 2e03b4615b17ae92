import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  authHeaders,
  counterSum,
  getJson,
  postJson,
  setMock,
  startStack,
  TestSocket,
  type ServiceProcess,
  type SocketMessage,
  type Stack,
} from '@actionedx/testkit';

/**
 * Collaboration sessions across gateway processes: two (then three) gateways on one NATS and one Redis,
 * authentication required. Members on different gateways see each other's turns, typing and the streamed
 * answer in one order; presence follows a gateway's death after the presence TTL; non-members are refused.
 */

const RUN = randomUUID().slice(0, 6);
const u = (name: string) => `${name}-${RUN}`;
const PRESENCE_TTL_MS = 1_500;

/** Reads until `pred` holds; every message read on the way is pushed to `seen` when given. */
async function readUntil(s: TestSocket, pred: (m: SocketMessage) => boolean, timeoutMs = 5_000, seen?: SocketMessage[]): Promise<SocketMessage> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const m = await s.next(Math.max(1, end - Date.now()));
    seen?.push(m);
    if (pred(m)) return m;
  }
}

type Member = { user_id: string; online: boolean; connections: number };
const presenceOf = (m: SocketMessage, user: string): Member | undefined =>
  m.type === 'presence' ? (m.members as Member[]).find((x) => x.user_id === user) : undefined;

/** A turn's frames as every member must see them: the turn, the answer, nothing else. */
const turnOnly = (frames: SocketMessage[]) =>
  frames
    .filter((m) => ['turn', 'stream_start', 'stream_chunk', 'stream_reset', 'stream_end', 'response'].includes(m.type))
    .map((m) => (m.type === 'stream_chunk' ? `chunk ${String(m.seq)} ${String(m.content)}` : m.type === 'turn' ? `turn ${String(m.user_id)}` : m.type));

const upgradeStatus = (url: string, headers: Record<string, string>) =>
  new Promise<number>((resolve) => {
    const ws = new WebSocket(url, { headers });
    ws.once('unexpected-response', (_req, res) => (resolve(res.statusCode ?? 0), ws.terminate()));
    ws.once('open', () => (resolve(101), ws.close()));
    ws.once('error', () => {});
  });

describe('collaboration sessions across gateway replicas (real NATS and Redis)', () => {
  let stack: Stack;
  let a: ServiceProcess;
  let b: ServiceProcess;
  const sockets: TestSocket[] = [];
  const headers: Record<string, Record<string, string>> = {};
  const hdr = (name: string) => headers[name]!;
  const wsOf = (gw: ServiceProcess, sessionId: string) => `${gw.url.replace('http', 'ws')}/ws/assistant/${sessionId}`;
  const open = async (gw: ServiceProcess, sessionId: string, name: string) => {
    const s = await TestSocket.open(wsOf(gw, sessionId), hdr(name));
    sockets.push(s);
    return s;
  };

  /** A session owned by alice (on gateway a) that bob joined (on gateway b) with its token. */
  async function aliceAndBob(): Promise<string> {
    const created = await postJson(`${a.url}/api/sessions`, { title: 'Launch plan' }, hdr('alice'));
    expect(created.status).toBe(201);
    const { session_id, join_token } = created.body as { session_id: string; join_token: string };
    const joined = await postJson(`${b.url}/api/sessions/${session_id}/join`, { join_token }, hdr('bob'));
    expect(joined.status).toBe(200);
    return session_id;
  }

  beforeAll(async () => {
    stack = await startStack({
      orchestrators: 1,
      gatewayEnv: { SESSION_PRESENCE_TTL_MS: String(PRESENCE_TTL_MS) },
      mockLlmEnv: { MOCK_LLM_TOKENS_PER_SECOND: '400', MOCK_LLM_COMPLETION_TOKENS: '24' },
    });
    a = stack.gateway;
    b = await stack.addGateway();
    for (const name of ['alice', 'bob', 'carol', 'mallory']) headers[name] = await authHeaders(u(name));
  }, 60_000);

  afterAll(async () => {
    await Promise.all(sockets.map((s) => s.close().catch(() => undefined)));
    await stack?.stop();
  });

  it("members on two gateways see each other's typing, turns and the streamed answer, in the same order", async () => {
    const id = await aliceAndBob();
    const alice = await open(a, id, 'alice');
    const bob = await open(b, id, 'bob');
    await readUntil(alice, (m) => presenceOf(m, u('bob'))?.online === true);
    await readUntil(bob, (m) => presenceOf(m, u('alice'))?.online === true);

    bob.send({ type: 'typing', is_typing: true });
    expect(await readUntil(alice, (m) => m.type === 'typing')).toMatchObject({ user_id: u('bob'), is_typing: true });

    const seenA: SocketMessage[] = [];
    const seenB: SocketMessage[] = [];
    alice.send({ message: `Plan the launch ${RUN}`, use_cache: false });
    const resA = await readUntil(alice, (m) => m.type === 'response', 10_000, seenA);
    const resB = await readUntil(bob, (m) => m.type === 'response', 10_000, seenB);
    expect(turnOnly(seenA)[0]).toBe(`turn ${u('alice')}`);
    expect(turnOnly(seenB)).toEqual(turnOnly(seenA));
    expect(turnOnly(seenA).filter((k) => k.startsWith('chunk')).length).toBeGreaterThan(1);
    const text = seenB.filter((m) => m.type === 'stream_chunk').map((m) => String(m.content)).join('');
    expect(text).toBe(resA.response);
    expect(resB.response).toBe(resA.response);

    // And the other way round: bob's turn, sent on gateway b, reaches alice on gateway a.
    seenA.length = 0;
    seenB.length = 0;
    bob.send({ message: `Who writes the brief ${RUN}?`, use_cache: false });
    await readUntil(bob, (m) => m.type === 'response', 10_000, seenB);
    await readUntil(alice, (m) => m.type === 'response', 10_000, seenA);
    expect(turnOnly(seenA)[0]).toBe(`turn ${u('bob')}`);
    expect(turnOnly(seenA)).toEqual(turnOnly(seenB));

    const members = await getJson(`${a.url}/api/sessions/${id}/members`, hdr('bob'));
    expect(members.status).toBe(200);
    expect(members.body.members).toEqual([
      { user_id: u('alice'), role: 'owner', online: true, connections: 1 },
      { user_id: u('bob'), role: 'member', online: true, connections: 1 },
    ]);
  });

  it("refuses a second member's message while a turn is answered (session_busy), across gateways", async () => {
    const id = await aliceAndBob();
    const alice = await open(a, id, 'alice');
    const bob = await open(b, id, 'bob');
    await readUntil(bob, (m) => presenceOf(m, u('alice'))?.online === true);
    await setMock(stack.mockLlm.url, { ttft_ms: 1_500 });
    try {
      alice.send({ message: `A slow question ${RUN}`, use_cache: false });
      await readUntil(bob, (m) => m.type === 'turn');
      bob.send({ message: 'Mine first?', use_cache: false });
      const refused = await readUntil(bob, (m) => m.type === 'error');
      expect(refused).toMatchObject({ code: 'session_busy', retryable: true });
      const seenB: SocketMessage[] = [];
      await readUntil(bob, (m) => m.type === 'response', 10_000, seenB);
      await readUntil(alice, (m) => m.type === 'response', 10_000);
      expect(seenB.some((m) => m.type === 'turn')).toBe(false);
    } finally {
      await setMock(stack.mockLlm.url, { ttft_ms: 0 });
    }
    const metrics = await (await fetch(`${b.opsUrl}/metrics`)).text();
    expect(counterSum(metrics, 'session_turns_refused_total', (l) => l.includes('reason="session_busy"'))).toBeGreaterThanOrEqual(1);
    expect(counterSum(metrics, 'session_fanout_messages_total', (l) => l.includes('direction="delivered"'))).toBeGreaterThan(0);
  });

  it('refuses a non-member: no socket (403), no member list (403 not_a_member)', async () => {
    const id = await aliceAndBob();
    expect(await upgradeStatus(wsOf(b, id), hdr('mallory'))).toBe(403);
    const list = await getJson(`${b.url}/api/sessions/${id}/members`, hdr('mallory'));
    expect(list.status).toBe(403);
    expect(list.body.error.code).toBe('not_a_member');
    const wrong = await postJson(`${a.url}/api/sessions/${id}/join`, { join_token: 'not-the-token' }, hdr('mallory'));
    expect(wrong.status).toBe(403);
    expect(wrong.body.error.code).toBe('invalid_join_token');
  });

  it("a member's gateway is killed: the others see them go offline after the presence TTL", async () => {
    const c = await stack.addGateway();
    const id = await aliceAndBob();
    const invited = await postJson(`${a.url}/api/sessions/${id}/members`, { user_id: u('carol') }, hdr('alice'));
    expect(invited.status).toBe(201);
    const alice = await open(a, id, 'alice');
    await open(c, id, 'carol');
    await readUntil(alice, (m) => presenceOf(m, u('carol'))?.online === true);
    expect((await getJson(`${b.url}/api/sessions/${id}/members`, hdr('bob'))).body.members).toContainEqual({
      user_id: u('carol'),
      role: 'member',
      online: true,
      connections: 1,
    });

    c.kill('SIGKILL');
    // Nobody announces it: gateway a notices the expired entry on its own.
    const gone = await readUntil(alice, (m) => presenceOf(m, u('carol'))?.online === false, PRESENCE_TTL_MS * 4);
    expect(presenceOf(gone, u('alice'))).toMatchObject({ online: true, connections: 1 });
    const list = await getJson(`${b.url}/api/sessions/${id}/members`, hdr('bob'));
    expect(list.body.members).toContainEqual({ user_id: u('carol'), role: 'member', online: false, connections: 0 });
    const metrics = await (await fetch(`${a.opsUrl}/metrics`)).text();
    expect(counterSum(metrics, 'session_presence_changes_total', (l) => l.includes('change="timeout"'))).toBeGreaterThanOrEqual(1);
  });
});
