/**
 * `npm run bench:fanout`: one streamed answer fanned out to the members of a collaboration session spread over
 * two gateway processes (real NATS and Redis, the mock LLM streaming at a set pace).
 *
 * 50 members (25 sockets on each gateway, the sender among the first 25) in one session; the sender asks
 * `ROUNDS` questions one after the other (the session takes one turn at a time). For every chunk the sender
 * receives, each other member's copy is timed against the sender's: the delivery delay of the fan-out (bus
 * hop, the other gateway's decode, each socket's write), all clocks in this one process. Figures: chunks
 * delivered per second (to every member, over the answers' streaming time), delay p50/p99/max, split by
 * members on the sender's gateway and on the other one. The bench's own sockets are part of the load (one
 * process reads all 50).
 *
 * Writes bench/results/fanout.json. Loopback only; bounded in time (each answer within 30 s); stops what it started.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { ROOT, postJson, startStack, type ServiceProcess } from '@actionedx/testkit';
import { round, summarize } from './lib/stats.js';

const QUICK = process.argv.includes('--quick');
const MEMBERS = 50;
const ROUNDS = QUICK ? 2 : 5;
const TOKENS = QUICK ? 100 : 200;
const TOKENS_PER_SECOND = 400;
const ANSWER_TIMEOUT_MS = 30_000;

interface Member {
  user: string;
  gateway: 'sender' | 'other';
  ws: WebSocket;
  /** seq → ms (performance.now()) of this answer's chunks. */
  chunks: Map<number, number>;
  done: Promise<void>;
  resolveDone: () => void;
}

function connect(gw: ServiceProcess, sessionId: string, user: string, side: Member['gateway']): Promise<Member> {
  const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/ws/assistant/${sessionId}?user_id=${user}`);
  const m: Member = { user, gateway: side, ws, chunks: new Map(), done: Promise.resolve(), resolveDone: () => undefined };
  ws.on('message', (data) => {
    const at = performance.now();
    const frame = JSON.parse(String(data)) as { type: string; seq?: number };
    if (frame.type === 'stream_chunk') m.chunks.set(frame.seq!, at);
    else if (frame.type === 'response' || frame.type === 'error') m.resolveDone();
  });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(m));
    ws.once('error', reject);
  });
}

function arm(m: Member): void {
  m.chunks.clear();
  m.done = new Promise<void>((resolve) => (m.resolveDone = resolve));
}

const stack = await startStack({
  orchestrators: 1,
  auth: 'open',
  gatewayEnv: { SESSION_MAX_MEMBERS: String(MEMBERS) },
  mockLlmEnv: { MOCK_LLM_TOKENS_PER_SECOND: String(TOKENS_PER_SECOND), MOCK_LLM_COMPLETION_TOKENS: String(TOKENS) },
});
try {
  const a = stack.gateway;
  const b = await stack.addGateway();
  const created = await postJson(`${a.url}/api/sessions`, { user_id: 'member-0', title: 'fan-out bench' });
  const { session_id: sessionId, join_token: joinToken } = created.body as { session_id: string; join_token: string };
  for (let i = 1; i < MEMBERS; i++) {
    const res = await postJson(`${a.url}/api/sessions/${sessionId}/join`, { user_id: `member-${i}`, join_token: joinToken });
    if (res.status !== 200) throw new Error(`join failed: ${res.status}`);
  }
  const members: Member[] = [];
  for (let i = 0; i < MEMBERS; i++) {
    const onSender = i < MEMBERS / 2;
    members.push(await connect(onSender ? a : b, sessionId, `member-${i}`, onSender ? 'sender' : 'other'));
  }
  const sender = members[0]!;
  // Every socket's subscription is in place once presence has settled; a short pause is enough here.
  await new Promise((r) => setTimeout(r, 1_000));

  const delays: Record<Member['gateway'], number[]> = { sender: [], other: [] };
  let delivered = 0;
  let streamingMs = 0;
  let incomplete = 0;
  for (let round_ = 0; round_ < ROUNDS; round_++) {
    members.forEach(arm);
    sender.ws.send(JSON.stringify({ message: `Fan-out round ${round_} ${Date.now()}`, use_cache: false }));
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      Promise.all(members.map((m) => m.done)).then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ANSWER_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
    if (!finished) throw new Error(`round ${round_}: not every member got the answer within ${ANSWER_TIMEOUT_MS} ms`);
    const first = Math.min(...sender.chunks.values());
    let last = first;
    for (const m of members.slice(1)) {
      for (const [seq, at] of m.chunks) {
        const base = sender.chunks.get(seq);
        if (base === undefined) continue;
        delays[m.gateway].push(at - base);
        delivered += 1;
        last = Math.max(last, at);
      }
      if (m.chunks.size !== sender.chunks.size) incomplete += 1;
    }
    streamingMs += last - first;
  }
  const all = [...delays.sender, ...delays.other];
  const fig = (xs: number[]) => {
    const s = summarize(xs);
    return { n: s.n, p50_ms: round(s.p50, 2), p99_ms: round(s.p99, 2), max_ms: round(s.max, 2) };
  };
  const result = {
    date: new Date().toISOString(),
    node: process.version,
    quick: QUICK,
    members: MEMBERS,
    gateways: 2,
    answers: ROUNDS,
    chunks_per_answer: sender.chunks.size,
    mock_tokens_per_second: TOKENS_PER_SECOND,
    chunks_delivered_per_second: round(delivered / (streamingMs / 1_000), 0),
    members_missing_chunks: incomplete,
    delivery_delay: { all: fig(all), same_gateway: fig(delays.sender), other_gateway: fig(delays.other) },
  };
  console.log(`Fan-out of one streamed answer to ${MEMBERS} members on 2 gateways (${ROUNDS} answers):`);
  console.table({ ...result.delivery_delay });
  console.log(`chunks delivered / s: ${result.chunks_delivered_per_second}; members missing chunks: ${incomplete}`);
  for (const m of members) m.ws.terminate();
  const dir = join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'fanout.json'), `${JSON.stringify(result, null, 2)}\n`);
} finally {
  await stack.stop();
}
// Exit explicitly: a keep-alive socket or a timer of a client library may linger.
process.exit(0);
