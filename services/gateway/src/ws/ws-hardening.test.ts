import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createLogger, createRedisClient, type Redis } from '@actionedx/shared';
import {
  CancelRecorder,
  FakeWorker,
  TestSocket,
  authHeaders,
  authRequiredConfig,
  metricValue,
  sampleValue,
  sleep,
  startTestGateway,
  type TestGateway,
} from '@actionedx/testkit';
import { ConnectionSlots, RedisSlotStore } from '../admission/connection-slots.js';
import { loadGatewayConfig } from '../config.js';
import { GATEWAY_VERSION } from '../version.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const DEFAULT_EDGE = loadGatewayConfig({}, { defaultAuthMode: 'open' }).edge;
const logger = createLogger({ service: 'gateway', version: GATEWAY_VERSION, level: 'silent', pretty: false });

const gateways: TestGateway[] = [];
const workers: FakeWorker[] = [];
const sockets: TestSocket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) await s.close().catch(() => {});
  for (const w of workers.splice(0)) w.stop();
  for (const g of gateways.splice(0)) await g.close();
});

async function gateway(env: Record<string, string> = {}, overrides: Parameters<typeof startTestGateway>[0] = {}, deps: Parameters<typeof startTestGateway>[1] = {}) {
  const g = await startTestGateway({ ...authRequiredConfig(env), ...overrides }, deps);
  gateways.push(g);
  return g;
}
const open = async (g: TestGateway, path: string, headers: Record<string, string>) => {
  const s = await TestSocket.open(g.wsUrl + path, headers);
  sockets.push(s);
  return s;
};
const status = (g: TestGateway, path: string, headers: Record<string, string>) =>
  new Promise<number>((resolve, reject) => {
    const ws = new WebSocket(g.wsUrl + path, { headers });
    ws.once('unexpected-response', (_req, res) => (resolve(res.statusCode ?? 0), ws.terminate()));
    ws.once('open', () => (ws.close(), reject(new Error('the upgrade succeeded'))));
    ws.once('error', () => {});
  });

describe('per-user connection cap', () => {
  it('refuses the connection over the cap (429 too_many_connections), and accepts again once one closes', async () => {
    const g = await gateway({ RATE_LIMITS: JSON.stringify({ user: { ws_connections: 2 } }) });
    const alice = await authHeaders('alice');
    const first = await open(g, '/ws/assistant/c1', alice);
    await open(g, '/ws/assistant/c2', alice);
    expect(await status(g, '/ws/assistant/c3', alice)).toBe(429);
    expect(await open(g, '/ws/assistant/b1', await authHeaders('bob'))).toBeDefined();
    await first.close();
    await expect.poll(() => status(g, '/ws/assistant/c3', alice).catch(() => 101)).toBe(101);
    expect(await metricValue(g.registry, 'gateway_rate_limited_total', { kind: 'ws_connections' })).toBeGreaterThanOrEqual(1);
  });
});

describe('per-connection message rate', () => {
  it('answers messages over the rate with rate_limited, without closing the socket', async () => {
    const g = await gateway({ RATE_LIMITS: JSON.stringify({ user: { ws_messages_per_second: 1, ws_message_burst: 3 } }) });
    const ws = await open(g, '/ws/assistant/r1', await authHeaders('alice'));
    for (let i = 0; i < 10; i++) ws.send({ type: 'ping' });
    const answers = [];
    for (let i = 0; i < 10; i++) answers.push(await ws.next());
    expect(answers.filter((m) => m.type === 'pong').length).toBeGreaterThanOrEqual(3);
    expect(answers.filter((m) => m.type === 'pong').length).toBeLessThanOrEqual(4);
    expect(answers.filter((m) => m.type === 'error')).toEqual(
      Array(answers.filter((m) => m.type === 'error').length).fill(expect.objectContaining({ code: 'rate_limited', details: { limit: 'ws_messages' } })),
    );
    await sleep(1_100);
    ws.send({ type: 'ping' });
    expect(await ws.next()).toMatchObject({ type: 'pong' });
  });
});

describe('a client that does not read', () => {
  it('stops relaying past the send-buffer cap, closes it (1013), cancels its answer upstream, and frees what it held', async () => {
    const g = await gateway({}, { edge: { ...DEFAULT_EDGE, wsSendBufferBytes: 256 * 1024 } });
    const cancels = new CancelRecorder(g.bus);
    const chunk = 'x'.repeat(32 * 1024);
    let sent = 0;
    workers.push(
      new FakeWorker(g.bus, {
        script: async (ctl) => {
          // An endless answer: 32 KiB chunks until the gateway says stop.
          for (let i = 0; i < 20_000 && !cancels.has(ctl.job.request_id); i++) {
            ctl.chunk(chunk);
            sent += chunk.length;
            if (i % 8 === 0) await sleep(1);
          }
        },
      }),
    );
    const ws = new WebSocket(`${g.wsUrl}/ws/assistant/slow`, { headers: await authHeaders('alice') });
    let closeCode: number | undefined;
    ws.on('close', (code) => (closeCode = code));
    await new Promise<void>((resolve) => ws.once('message', () => resolve())); // connected
    ws.send(JSON.stringify({ message: 'a very long answer please' }));
    // Stop reading: the kernel's buffers fill, then the gateway's.
    const raw = (ws as unknown as { _socket: Socket })._socket;
    raw.pause();
    await expect.poll(() => metricValue(g.registry, 'websocket_closes_total', { reason: 'send_buffer_full' }), { timeout: 15_000 }).toBe(1);
    // The answer was cancelled upstream, the turn is over, nothing is held for the client any more.
    await expect.poll(() => cancels.cancels.some((c) => c.message.reason === 'client_gone'), { timeout: 5_000 }).toBe(true);
    await expect.poll(() => g.gateway.dispatcher.inFlight, { timeout: 5_000 }).toBe(0);
    await expect.poll(async () => sampleValue(await (await fetch(`${g.opsUrl}/metrics`)).text(), 'websocket_send_buffer_bytes'), { timeout: 5_000 }).toBe(0);
    expect(await metricValue(g.registry, 'websocket_active_connections')).toBe(0);
    expect(sent).toBeGreaterThan(256 * 1024);
    raw.resume();
    await expect.poll(() => closeCode, { timeout: 5_000 }).toBeDefined();
    // 1013 when the close frame got through; 1006 when the gateway had to cut the connection first.
    expect([1013, 1006]).toContain(closeCode);
  });
});

async function redisAnswers(url: string): Promise<Redis | undefined> {
  const client = createRedisClient({ url, name: 'gateway-slots-test', commandTimeoutMs: 1_000 });
  try {
    await new Promise<void>((resolve, reject) => {
      if (client.status === 'ready') return resolve();
      client.once('ready', () => resolve());
      setTimeout(() => reject(new Error('no redis')), 1_500);
    });
    return client;
  } catch {
    client.disconnect();
    return undefined;
  }
}
const redis = await redisAnswers(REDIS_URL);

describe.skipIf(redis === undefined)('connection slots in Redis (real Redis)', () => {
  afterAll(() => redis?.disconnect());

  it('caps a user across replicas, and frees the slots of a replica that stops renewing them', async () => {
    const leaseMs = 1_000;
    const store = new RedisSlotStore(redis!);
    const replica = (id: string) => new ConnectionSlots(store, { gatewayId: id, leaseMs, logger, onError: () => {} });
    const [a, b] = [replica(`gw-a-${randomUUID()}`), replica(`gw-b-${randomUUID()}`)];
    a.start();
    const user = `u-${randomUUID()}`;
    const held = [await a.acquire(user, 3), await a.acquire(user, 3), await b.acquire(user, 3)];
    expect(held.every((c) => c !== undefined)).toBe(true);
    expect(await a.acquire(user, 3)).toBeUndefined();
    expect(await b.acquire(user, 3)).toBeUndefined();
    // b "dies": it never renews. Its slot lapses after the lease; a's stay (renewed).
    await sleep(leaseMs * 2);
    expect(await a.acquire(user, 3)).toBeDefined();
    expect(await b.acquire(user, 3)).toBeUndefined();
    a.release(held[0]!);
    await expect.poll(async () => (await b.acquire(user, 3)) !== undefined).toBe(true);
    a.stop();
  });

  it('shares the cap between two gateways on one limiter Redis', async () => {
    const env = { RATE_LIMITS: JSON.stringify({ user: { ws_connections: 2 } }) };
    const [g1, g2] = [await gateway(env, {}, { limiterRedis: redis! }), await gateway(env, {}, { limiterRedis: redis! })];
    const user = `u-${randomUUID().slice(0, 8)}`;
    const headers = await authHeaders(user);
    await open(g1, '/ws/assistant/x1', headers);
    await open(g2, '/ws/assistant/x2', headers);
    expect(await status(g1, '/ws/assistant/x3', headers)).toBe(429);
    expect(await status(g2, '/ws/assistant/x3', headers)).toBe(429);
  });
});
