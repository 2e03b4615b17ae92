import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * main.ts as an operator runs it: the built file, a real process, signals. `npm test` builds first, so a missing
 * build is a setup error and fails; NATS not answering skips the one test that needs it, saying so in its name.
 */
const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

const natsAnswers = await new Promise<boolean>((resolve) => {
  const url = new URL(NATS_URL);
  const socket = connect(Number(url.port || 4222), url.hostname);
  socket.setTimeout(500);
  socket.once('connect', () => (socket.destroy(), resolve(true)));
  socket.once('error', () => resolve(false));
  socket.once('timeout', () => (socket.destroy(), resolve(false)));
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function start(env: Record<string, string>) {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first (\`npm test\` builds before it tests)`);
  const child = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH ?? '', LOG_PRETTY: 'false', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += String(d)));
  child.stderr.on('data', (d) => (stderr += String(d)));
  const exited = new Promise<Run>((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
  return { child, exited, output: () => stdout };
}

/** A way in for the required authentication mode (the gateway's default). */
const AUTH = { JWT_SECRET: 'main-test-secret-main-test-secret-0123', OPS_PORT: '0' };

describe('gateway main', () => {
  it('prints every bad variable and exits 1', async () => {
    const run = await start({ PORT: 'x', ACK_TIMEOUT_MS: '0', NATS_URL: NATS_URL }).exited;
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('PORT');
    expect(run.stderr).toContain('ACK_TIMEOUT_MS');
  });

  it('refuses to start without NATS_URL and says why', async () => {
    const run = await start({ PORT: '0', ...AUTH }).exited;
    expect(run.code).toBe(1);
    expect(run.stdout + run.stderr).toMatch(/NATS_URL is required/);
  });

  it('requires authentication by default, and refuses to start without a way in', async () => {
    const run = await start({ PORT: '0', NATS_URL }).exited;
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/AUTH_MODE: required needs a way in: JWT_SECRET, JWT_PUBLIC_KEY, JWT_JWKS_URL or ADMIN_API_KEY/);
  });

  const noNats = natsAnswers ? '' : ` (skipped: NATS not reachable at ${NATS_URL})`;
  it.skipIf(!natsAnswers)(`logs the actual port, serves, and exits 0 on SIGTERM${noNats}`, async () => {
    const p = start({ PORT: '0', HOST: '127.0.0.1', NATS_URL, ...AUTH });
    const deadline = Date.now() + 10_000;
    let port: number | undefined;
    let listening: { port?: number; ops_port?: number; auth?: string } = {};
    while (port === undefined && Date.now() < deadline) {
      for (const line of p.output().split('\n')) {
        if (!line.trim()) continue;
        const entry = JSON.parse(line) as { msg?: string; port?: number };
        if (entry.msg === 'listening') {
          listening = entry;
          port = entry.port;
        }
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(port).toBeGreaterThan(0);
    expect(listening.auth).toBe('required');
    expect(listening.ops_port).toBeGreaterThan(0);
    expect(listening.ops_port).not.toBe(port);
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(ready.status).toBe(200);
    const health = (await (await fetch(`http://127.0.0.1:${port}/api/health`)).json()) as {
      dependencies: { nats: { status: string; kind: string } };
    };
    expect(health.dependencies.nats).toEqual({ status: 'connected', kind: 'nats' });
    // Prometheus scrapes the ops port; the public one has no /metrics, and /api/metrics wants an admin.
    expect((await fetch(`http://127.0.0.1:${listening.ops_port}/metrics`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status).toBe(401);
    expect((await fetch(`http://127.0.0.1:${port}/api/metrics`)).status).toBe(401);
    p.child.kill('SIGTERM');
    const run = await p.exited;
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('"msg":"stopped"');
  });
});
