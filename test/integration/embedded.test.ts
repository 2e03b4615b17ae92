import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, startService, type ServiceProcess } from '@actionedx/testkit';
import { defineApiSuite } from './api-suite.js';

describe('embedded mode (npm start): one process, no servers, no keys', () => {
  let app: ServiceProcess;
  beforeAll(async () => {
    app = await startService('embedded', {});
  }, 30_000);
  afterAll(async () => {
    await app?.stop();
  });

  it('says it runs embedded, with the in-process bus, an in-memory cache and the mock LLM', () => {
    const line = app.logs.find((l) => l.msg === 'listening');
    expect(line).toMatchObject({ mode: 'embedded', bus: 'in-process', cache: 'memory' });
    expect(String(line!.model)).toMatch(/mock LLM/);
  });

  defineApiSuite(() => ({ url: app.url, wsUrl: app.url.replace('http', 'ws') }));

  it('serves the metrics of gateway and orchestrator on one endpoint', async () => {
    const res = await getJson(`${app.url}/metrics`);
    expect(res.body).toContain('service="gateway"');
    expect(res.body).toContain('ai_requests_total{');
    expect(res.body).toContain('service="orchestrator"');
  });
});
