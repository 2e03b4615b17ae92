import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, ConsoleMessage } from 'playwright-core';
import {
  ROOT,
  SEED_CLIENT_HOST,
  SEED_CLIENT_SOURCE,
  SEED_CLIENT_USER,
  mintToken,
  seedClientFor,
  startService,
  testAuthEnv,
  type ServiceProcess,
} from '@actionedx/testkit';
import { launch } from './browser.js';

/**
 * The seed's WebSocket client (phase1-summary.md, "WebSocket Client Example") is a contract: it must
 * work unchanged in a real browser. This runs it in Debian's Chromium against the embedded platform.
 * Chromium comes from the Debian package `chromium` (.ci/run installs it); nothing is downloaded.
 */

const SEED_HOST = SEED_CLIENT_HOST;
/** The seed's client, byte for byte as the seed prints it (testkit keeps the one copy). */
const SEED_CLIENT = SEED_CLIENT_SOURCE;
/** The seed document itself, beside the repository (shared/ is laid next to main for developers and CI). */
const SEED_DOC = fileURLToPath(new URL('../shared/seed/phase1-summary.md', `file://${ROOT}`));

interface Logged {
  type: string;
  text: string;
  args: unknown[];
}

const page = (title: string, script: string) =>
  `<!doctype html>\n<html>\n<head><meta charset="utf-8"><title>${title}</title></head>\n<body>\n<h1>${title}</h1>\n<script>\n${script}</script>\n</body>\n</html>\n`;

describe('the seed WebSocket client in a real browser (Chromium, headless)', () => {
  let app: ServiceProcess | undefined;
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;
  let server: Server | undefined;
  let origin = '';
  /** Why the browser or the platform could not be started: each browser test fails with it (never skips). */
  let setupError: unknown;
  const ready = () => {
    if (setupError !== undefined) throw setupError;
  };

  beforeAll(async () => {
    try {
      await setUp();
    } catch (err) {
      setupError = err;
    }
  }, 30_000);

  async function setUp(): Promise<void> {
    // Both at once; whichever started is stopped in afterAll even if the other failed.
    const [started, launched] = await Promise.allSettled([
      startService('embedded', {}),
      launch(),
    ]);
    if (started.status === 'fulfilled') app = started.value;
    if (launched.status === 'fulfilled') browser = launched.value;
    if (started.status === 'rejected') throw started.reason;
    if (launched.status === 'rejected') throw launched.reason;
    context = await browser!.newContext();

    // The seed's client with only its host replaced, served from an origin of its own (another port).
    const host = new URL(app!.url).host;
    if (SEED_CLIENT.split(SEED_HOST).length !== 2) throw new Error(`the seed client must name ${SEED_HOST} exactly once`);
    const pages: Record<string, string> = {
      '/': page('Seed WebSocket client', seedClientFor(host)),
      '/blank.html': page('Blank', ''),
    };
    server = createServer((req, res) => {
      if (req.url === '/favicon.ico') {
        res.writeHead(204).end(); // no 404 for the browser to report on the console
        return;
      }
      const body = pages[req.url ?? ''];
      if (body === undefined) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(body);
    });
    await new Promise<void>((resolve, reject) => {
      server!.once('error', reject);
      server!.listen(0, '127.0.0.1', () => resolve());
    });
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  afterAll(async () => {
    await context?.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await app?.stop(2000);
  });

  // The fixture must not drift from the seed, which sits beside the repository for developers and CI.
  const noSeedDoc = existsSync(SEED_DOC) ? '' : ` (skipped: ${SEED_DOC} not found)`;
  it.skipIf(!existsSync(SEED_DOC))(`is the seed document's client, byte for byte${noSeedDoc}`, () => {
    const doc = readFileSync(SEED_DOC, 'utf8');
    const section = doc.slice(doc.indexOf('### WebSocket Client Example:'));
    const block = /```javascript\n([\s\S]*?)```/.exec(section);
    expect(block?.[1]).toBe(SEED_CLIENT);
  });

  it("runs the seed's client unchanged: connects, streams and receives the response with suggestions", async () => {
    ready();
    const tab = await context!.newPage();
    const pending: Array<Promise<Logged>> = [];
    const pageErrors: string[] = [];
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    tab.on('pageerror', (err) => {
      pageErrors.push(String(err));
      done();
    });
    tab.on('console', (msg: ConsoleMessage) => {
      pending.push(
        Promise.all(msg.args().map((a) => a.jsonValue().catch(() => msg.text()))).then((args) => ({ type: msg.type(), text: msg.text(), args })),
      );
      const text = msg.text();
      if (text.startsWith('Suggestions:') || text.startsWith('Error:')) done();
    });

    await tab.goto(`${origin}/`, { waitUntil: 'load', timeout: 10_000 });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      finished.then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), 15_000))),
    ]);
    clearTimeout(timer);
    const logged = await Promise.all(pending);
    await tab.close();

    const trace = JSON.stringify(logged).slice(0, 2000);
    expect(pageErrors, trace).toEqual([]);
    expect(timedOut, `no 'Suggestions:' within 15 s; saw ${trace}`).toBe(false);
    expect(logged.filter((l) => l.type === 'error' || l.args[0] === 'Error:'), trace).toEqual([]);

    const first = (label: string) => logged.find((l) => l.type === 'log' && l.args[0] === label);
    const labels = logged.map((l) => l.args[0]);
    expect(labels[0], trace).toBe('Connected!');
    expect(typeof first('Welcome:')?.args[1], trace).toBe('string');
    expect(labels, trace).toContain('AI is thinking...');
    const chunks = logged.filter((l) => l.args[0] === 'Chunk:');
    expect(chunks.length, trace).toBeGreaterThan(0);
    const response = first('Response:')?.args[1];
    expect(typeof response, trace).toBe('string');
    expect((response as string).length).toBeGreaterThan(20);
    // The streamed chunks add up to the response.
    expect(chunks.map((c) => c.args[1]).join('')).toBe(response);
    const suggestions = first('Suggestions:')?.args[1];
    expect(Array.isArray(suggestions), trace).toBe(true);
    expect((suggestions as unknown[]).length).toBeGreaterThan(0);
    expect(labels.at(-1)).toBe('Suggestions:');
    // The order the seed prints in.
    const at = (label: string) => labels.indexOf(label);
    expect(at('Connected!')).toBeLessThan(at('AI is thinking...'));
    expect(at('Welcome:')).toBeLessThan(at('AI is thinking...'));
    expect(at('AI is thinking...')).toBeLessThan(at('Chunk:'));
    expect(labels.lastIndexOf('Chunk:')).toBeLessThan(at('Response:'));
  }, 20_000);

  it('lets a page on another origin POST /api/assistant/chat with fetch (CORS)', async () => {
    ready();
    const tab = await context!.newPage();
    await tab.goto(`${origin}/blank.html`, { waitUntil: 'load', timeout: 10_000 });
    const result = await tab.evaluate(async (url) => {
      const res = await fetch(`${url}/api/assistant/chat`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user_id: 'browser-user', message: `Hello from the browser ${Date.now()}`, mode: 'strategist' }),
      });
      return {
        status: res.status,
        contentType: res.headers.get('content-type'),
        requestId: res.headers.get('x-request-id'),
        body: (await res.json()) as Record<string, unknown>,
      };
    }, app!.url);
    await tab.close();

    expect(result.status).toBe(200);
    expect(result.contentType).toMatch(/application\/json/);
    expect(result.requestId, 'x-request-id is exposed to the browser').toBeTruthy();
    expect(typeof result.body.response).toBe('string');
    expect((result.body.response as string).length).toBeGreaterThan(0);
    expect(result.body).toMatchObject({ mode: 'strategist', cached: false });
    expect(Array.isArray(result.body.suggestions)).toBe(true);
  }, 20_000);
});

/** A static page server on a free loopback port: its origin is what the browser sends as `Origin`. */
async function pageServer(pages: Record<string, string>): Promise<{ origin: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const body = pages[req.url ?? ''];
    if (body === undefined) return void res.writeHead(req.url === '/favicon.ico' ? 204 : 404).end();
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('the seed WebSocket client in a real browser, with authentication on', () => {
  let app: ServiceProcess | undefined;
  let browser: Browser | undefined;
  let allowed: Awaited<ReturnType<typeof pageServer>> | undefined;
  let other: Awaited<ReturnType<typeof pageServer>> | undefined;
  let setupError: unknown;
  const token = mintToken(SEED_CLIENT_USER, { ttlS: 600 });

  beforeAll(async () => {
    try {
      // Pages first: the allowed one's origin goes into CORS_ORIGINS. The same client runs on both.
      const pages = { '/': '' };
      allowed = await pageServer(pages);
      other = await pageServer(pages);
      app = await startService('embedded', testAuthEnv({ CORS_ORIGINS: allowed.origin }));
      const host = new URL(app.url).host;
      pages['/'] = page('Seed WebSocket client with a token', seedClientFor(host, await token));
      browser = await launch();
    } catch (err) {
      setupError = err;
    }
  }, 30_000);

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await allowed?.close();
    await other?.close();
    await app?.stop(2000);
  });

  /** Run the page of `origin` until the client logs its suggestions, an error, or the socket fails. */
  async function run(origin: string): Promise<{ labels: unknown[]; failed: boolean }> {
    if (setupError !== undefined) throw setupError;
    const tab = await browser!.newPage();
    const labels: unknown[] = [];
    let failed = false;
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    tab.on('console', (msg: ConsoleMessage) => {
      const text = msg.text();
      labels.push(text.split(' ')[0]);
      // The browser reports a refused upgrade on the console as an error of its own.
      if (msg.type() === 'error' && /WebSocket connection .* failed/.test(text)) {
        failed = true;
        done();
      }
      if (text.startsWith('Suggestions:') || text.startsWith('Error:')) done();
    });
    await tab.goto(`${origin}/`, { waitUntil: 'load', timeout: 10_000 });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([finished, new Promise<void>((r) => (timer = setTimeout(r, 15_000)))]);
    clearTimeout(timer);
    await tab.close();
    return { labels, failed };
  }

  it("runs the seed's client with ?access_token= from an allowed origin, to the end", async () => {
    const { labels, failed } = await run(allowed!.origin);
    expect(failed, JSON.stringify(labels)).toBe(false);
    expect(labels[0]).toBe('Connected!');
    expect(labels).toContain('Welcome:');
    expect(labels).toContain('Chunk:');
    expect(labels.at(-1)).toBe('Suggestions:');
  }, 20_000);

  it('is refused from an origin that is not allowed, token or not', async () => {
    const { labels, failed } = await run(other!.origin);
    expect(failed, JSON.stringify(labels)).toBe(true);
    expect(labels).not.toContain('Connected!');
  }, 20_000);
});
