import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cors } from './cors.js';

async function serve(origins: string[]): Promise<{ base: string; close: () => void }> {
  const app = express();
  app.use(cors(origins));
  app.post('/x', (_req, res) => void res.json({ ok: true }));
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() };
}

const preflight = (base: string, origin: string) =>
  fetch(`${base}/x`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
  });

describe('cors with a list of origins', () => {
  let s: { base: string; close: () => void };
  beforeAll(async () => {
    s = await serve(['http://localhost:3000']);
  });
  afterAll(() => s.close());

  it('answers a preflight from an allowed origin: 204, methods, headers, max-age 600', async () => {
    const res = await preflight(s.base, 'http://localhost:3000');
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('http://localhost:3000');
    expect(res.headers.get('vary')).toMatch(/Origin/);
    expect(res.headers.get('access-control-allow-methods')).toBe('GET,POST,OPTIONS');
    expect(res.headers.get('access-control-allow-headers')).toContain('x-request-id');
    expect(res.headers.get('access-control-allow-headers')).toContain('traceparent');
    expect(res.headers.get('access-control-max-age')).toBe('600');
  });

  it('adds the headers to a request from an allowed origin, and none for another origin or none', async () => {
    const ok = await fetch(`${s.base}/x`, { method: 'POST', headers: { origin: 'http://localhost:3000' } });
    expect(ok.headers.get('access-control-allow-origin')).toBe('http://localhost:3000');
    expect(ok.headers.get('access-control-expose-headers')).toBe('x-request-id,traceparent,x-cache');
    for (const headers of [{ origin: 'http://evil.example' }, {}]) {
      const other = await fetch(`${s.base}/x`, { method: 'POST', headers });
      expect(other.status).toBe(200);
      expect(other.headers.get('access-control-allow-origin')).toBeNull();
      expect(other.headers.get('access-control-expose-headers')).toBeNull();
    }
    const refused = await preflight(s.base, 'http://evil.example');
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('cors with *', () => {
  let s: { base: string; close: () => void };
  beforeAll(async () => {
    s = await serve(['*']);
  });
  afterAll(() => s.close());

  it('allows any origin with *, without Vary', async () => {
    const res = await preflight(s.base, 'http://anywhere.example');
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('vary') ?? '').not.toMatch(/Origin/);
    const post = await fetch(`${s.base}/x`, { method: 'POST', headers: { origin: 'http://anywhere.example' } });
    expect(post.headers.get('access-control-allow-origin')).toBe('*');
    expect(post.headers.get('access-control-expose-headers')).toBe('x-request-id,traceparent,x-cache');
  });
});
