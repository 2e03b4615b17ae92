import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { authRequiredConfig, mintToken, startTestGateway, type TestGateway } from '@actionedx/testkit';
import { sameHost } from '../ws/assistant-socket-server.js';
import { PAGE_CSP } from './web-page.js';

/** Whether the upgrade with this Origin is accepted: resolves with the close/open outcome. */
function upgrade(url: string, origin: string): Promise<'open' | number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers: { origin } });
    ws.once('open', () => {
      ws.close();
      resolve('open');
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('error', () => resolve(0));
  });
}

describe('the web page, with authentication required', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway(authRequiredConfig());
  });
  afterAll(() => gw.close());

  it('serves / to anyone, with the page policy (own scripts only, no inline) and revalidation', async () => {
    const res = await fetch(`${gw.baseUrl}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('content-security-policy')).toBe(PAGE_CSP);
    expect(PAGE_CSP).not.toMatch(/unsafe-(inline|eval)/);
    expect(res.headers.get('cache-control')).toBe('no-cache');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await res.text();
    expect(html).toContain('<script type="module" src="/assets/app.js"></script>');
    // No inline script or style: everything the policy would refuse is absent.
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/\sstyle=|<style|\son[a-z]+=/i);
  });

  it('serves every asset the page names as its own type; a missing one is 404, not 401', async () => {
    const html = await (await fetch(`${gw.baseUrl}/`)).text();
    const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    expect(assets.sort()).toEqual(['/assets/app.js', '/assets/style.css']);
    const app = await (await fetch(`${gw.baseUrl}/assets/app.js`)).text();
    const imported = [...app.matchAll(/from '\.\/([^']+)'/g)].map((m) => `/assets/${m[1]}`);
    expect(imported.length).toBeGreaterThan(3);
    for (const path of [...assets, ...imported]) {
      const res = await fetch(`${gw.baseUrl}${path}`);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type'), path).toMatch(path.endsWith('.css') ? /^text\/css/ : /^text\/javascript/);
      expect(res.headers.get('etag'), path).toBeTruthy();
    }
    // Counted under the route's pattern, never the file's name (metric labels stay few).
    const metrics = await (await fetch(`${gw.opsUrl}/metrics`)).text();
    expect(metrics).toMatch(/http_requests_total\{[^}]*route="\/assets\/:file"/);
    expect(metrics).not.toMatch(/route="\/assets\/app\.js"/);
    const missing = await fetch(`${gw.baseUrl}/assets/nothing.js`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('not_found');
    // Out of the folder: refused, never served.
    const escape = await fetch(`${gw.baseUrl}/assets/..%2F..%2Fpackage.json`);
    expect(escape.status).toBeGreaterThanOrEqual(400);
    expect(escape.status).toBeLessThan(500);
    expect(await escape.text()).not.toContain("@actionedx/gateway");
  });

  it('keeps the API behind authentication and its own policy', async () => {
    const res = await fetch(`${gw.baseUrl}/api/websocket/stats`);
    expect(res.status).toBe(401);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(res.headers.get('content-security-policy')).not.toContain('script-src');
  });

  it("lets the page's own origin open the WebSocket (no CORS_ORIGINS needed); another origin is still refused", async () => {
    const token = await mintToken('page-user');
    const url = `${gw.wsUrl}/ws/assistant/page-1?access_token=${token}`;
    expect(await upgrade(url, gw.baseUrl)).toBe('open');
    expect(await upgrade(url, 'http://127.0.0.1:1')).toBe(403);
    expect(await upgrade(url, 'https://evil.example')).toBe(403);
  });
});

describe('sameHost', () => {
  it('compares the Origin with the Host header, port included', () => {
    expect(sameHost('http://localhost:8001', 'localhost:8001')).toBe(true);
    expect(sameHost('https://Chat.Example.com', 'chat.example.com')).toBe(true);
    expect(sameHost('http://localhost:8002', 'localhost:8001')).toBe(false);
    expect(sameHost('http://evil.example', 'localhost:8001')).toBe(false);
    expect(sameHost('null', 'localhost:8001')).toBe(false);
    expect(sameHost('http://localhost:8001', undefined)).toBe(false);
  });
});
