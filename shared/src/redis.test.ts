import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createRedisClient, type Redis } from './redis.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Busy for `ms`: the event loop can neither fire timers nor read sockets meanwhile. */
function blockLoop(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

const ready = (client: Redis) =>
  new Promise<void>((resolve, reject) => {
    if (client.status === 'ready') return resolve();
    client.once('ready', () => resolve());
    setTimeout(() => reject(new Error(`not ready: ${client.status}`)), 2_000).unref();
  });

/**
 * A Redis that answers the connection's handshake (CLIENT ..., INFO, SELECT) and nothing else: every other command
 * stays unanswered, as on a server that hangs.
 */
async function silentRedis(): Promise<{ url: string; server: Server }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let buffered = '';
    socket.on('data', (data) => {
      buffered += data.toString('latin1');
      // Each command is an array of bulk strings: `*<n>\r\n` then `$<len>\r\n<arg>\r\n` n times.
      for (;;) {
        const m = /^\*(\d+)\r\n/.exec(buffered);
        if (!m) return;
        let at = m[0].length;
        const args: string[] = [];
        for (let i = 0; i < Number(m[1]); i++) {
          const len = /^\$(\d+)\r\n/.exec(buffered.slice(at));
          if (!len || buffered.length < at + len[0].length + Number(len[1]) + 2) return;
          at += len[0].length;
          args.push(buffered.slice(at, at + Number(len[1])));
          at += Number(len[1]) + 2;
        }
        buffered = buffered.slice(at);
        const name = args[0]!.toLowerCase();
        if (name === 'client' || name === 'select') socket.write('+OK\r\n');
        else if (name === 'info') {
          const info = '# Server\r\nredis_version:7.0.0\r\nloading:0\r\n';
          socket.write(`$${info.length}\r\n${info}\r\n`);
        }
      }
    });
  });
  server.on('close', () => sockets.forEach((s) => s.destroy()));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { url: `redis://127.0.0.1:${port}`, server };
}

const clients: Redis[] = [];
const servers: Server[] = [];
afterEach(() => {
  clients.splice(0).forEach((c) => c.disconnect());
  servers.splice(0).forEach((s) => s.close());
});

describe('createRedisClient: the command timeout', () => {
  it('does not fail a command whose answer came while this process was busy past the deadline', async () => {
    const client = createRedisClient({ url: REDIS_URL, name: 'redis-test-lag', commandTimeoutMs: 50 });
    clients.push(client);
    await ready(client);
    const answers = Promise.allSettled([client.ping(), client.echo('still here')]);
    // Redis answers in well under a millisecond; this process reads the answers only after 120 ms.
    blockLoop(120);
    const [ping, echo] = await answers;
    expect(ping).toEqual({ status: 'fulfilled', value: 'PONG' });
    expect(echo).toEqual({ status: 'fulfilled', value: 'still here' });
  });

  it('fails a command Redis does not answer, after about the timeout', async () => {
    const { url, server } = await silentRedis();
    servers.push(server);
    const client = createRedisClient({ url, name: 'redis-test-silent', commandTimeoutMs: 50 });
    clients.push(client);
    await ready(client);
    const started = performance.now();
    await expect(client.get('anything')).rejects.toThrow('Command timed out');
    const waited = performance.now() - started;
    expect(waited).toBeGreaterThanOrEqual(45);
    expect(waited).toBeLessThan(1_000);
  });
});
