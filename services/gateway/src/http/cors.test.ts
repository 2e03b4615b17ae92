import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cors } from './cors.js';

describe('cors', () => {
  let base = '';
  let close: () => void;
  beforeAll(async () => {
    const app = express();
    app.use(cors(['http://localhost:3000']));
    app.post('/x', (_req, res) => void res.json({ ok: true }));
    const server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    close = () => server.close();
  });
  afterAll(() => close());

  it('answers a preflight from an allowed origin', async () => {
    const res = await fetch(`${base}/x`, {
      method: 'OPTIONS',
      headers: { origin: 'http://localhost:3000', 'access-control-request-method': 'POST' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('http://localhost:3000');
    expect(res.headers.get('access-control-allow-headers')).toContain('x-request-id');
  });

  it('adds the headers to a request from an allowed origin, and none for another', async () => {
    const ok = await fetch(`${base}/x`, { method: 'POST', headers: { origin: 'http://localhost:3000' } });
    expect(ok.headers.get('access-control-allow-origin')).toBe('http://localhost:3000');
    expect(ok.headers.get('access-control-expose-headers')).toContain('x-request-id');
    const other = await fetch(`${base}/x`, { method: 'POST', headers: { origin: 'http://evil.example' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });
});
