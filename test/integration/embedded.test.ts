import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, postJson, startService, testAuthEnv, type ServiceProcess } from '@actionedx/testkit';
import { defineApiSuite } from './api-suite.js';

describe('embedded mode (npm start) with authentication on: one process, no servers, no keys', () => {
  let app: ServiceProcess;
  beforeAll(async () => {
    app = await startService('embedded', testAuthEnv());
  }, 30_000);
  afterAll(async () => {
    await app?.stop();
  });

  it('says it runs embedded, with the in-process bus, an in-memory cache and the mock LLM, authentication required', () => {
    const line = app.logs.find((l) => l.msg === 'listening');
    expect(line).toMatchObject({ mode: 'embedded', bus: 'in-process', cache: 'memory', auth: 'required' });
    expect(String(line!.model)).toMatch(/mock LLM/);
  });

  defineApiSuite(() => ({ url: app.url, wsUrl: app.url.replace('http', 'ws'), auth: true }));

  it('serves the metrics of gateway and orchestrator on one endpoint, on its ops port', async () => {
    expect(app.opsUrl).not.toBe(app.url);
    const res = await getJson(`${app.opsUrl}/metrics`);
    expect(res.body).toContain('service="gateway"');
    expect(res.body).toContain('ai_requests_total{');
    expect(res.body).toContain('service="orchestrator"');
  });
});

describe('embedded mode by default: open, and loud about it', () => {
  let app: ServiceProcess;
  beforeAll(async () => {
    app = await startService('embedded', {});
  }, 30_000);
  afterAll(async () => {
    await app?.stop();
  });

  it('runs without authentication and warns at start', async () => {
    expect(app.logs.find((l) => l.msg === 'listening')).toMatchObject({ auth: 'open' });
    expect(app.logs.some((l) => l.level === 'warn' && String(l.msg).includes('NO AUTHENTICATION'))).toBe(true);
    const res = await postJson(`${app.url}/api/assistant/chat`, { user_id: 'test', message: 'Hello', mode: 'strategist' });
    expect(res.status).toBe(200);
  });
});
