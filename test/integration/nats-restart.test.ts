import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authHeaders, freePort, getJson, postJson, startNats, startService, startStack, testAuthEnv, until, type Stack } from '@actionedx/testkit';

describe('NATS restarted under a running stack', () => {
  let stack: Stack;
  let restarted: Awaited<ReturnType<typeof startNats>> | undefined;
  beforeAll(async () => {
    stack = await startStack({ orchestrators: 2 });
  }, 60_000);
  afterAll(async () => {
    await restarted?.stop();
    await stack?.stop();
  });

  it('reports not ready while the bus is down, then reconnects every service and answers again', async () => {
    const auth = await authHeaders('nr', { ttlS: 3_600 });
    const ask = () => postJson(`${stack.url}/api/assistant/chat`, { user_id: 'nr', message: `still there? ${randomUUID()}` }, auth);
    expect((await ask()).status).toBe(200);

    await stack.nats.stop();
    await until(async () => (await fetch(`${stack.url}/readyz`)).status === 503, 10_000, 'the gateway to report not ready');
    for (const o of stack.orchestrators) {
      await until(async () => (await fetch(`${o.url}/readyz`)).status === 503, 10_000, `${o.name} to report not ready`);
    }
    // While the bus is down a request fails clearly and retryably, never hangs.
    const during = await ask();
    expect(during.status).toBe(503);
    expect(during.body.error.retryable).toBe(true);

    restarted = await startNats(stack.nats.port);
    await until(async () => (await fetch(`${stack.url}/readyz`)).status === 200, 15_000, 'the gateway to be ready again');
    for (const o of stack.orchestrators) {
      await until(async () => (await fetch(`${o.url}/readyz`)).status === 200, 15_000, `${o.name} to be ready again`);
    }
    // Subscriptions are back: answers flow, and the health check reaches the workers.
    await until(async () => (await ask()).status === 200, 10_000, 'answers after the restart');
    const results = await Promise.all(Array.from({ length: 10 }, ask));
    expect(results.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect((await getJson(`${stack.url}/api/health`)).body.dependencies.orchestrators.status).toBe('reachable');
  }, 60_000);
});

describe('services started while NATS is down', () => {
  it('listen at once, report not ready, refuse chats clearly, and become ready when NATS comes', async () => {
    const port = await freePort();
    const natsUrl = `nats://127.0.0.1:${port}`;
    const mock = await startService('mock-llm', {});
    const gateway = await startService('gateway', { NATS_URL: natsUrl, HOST: '127.0.0.1', ...testAuthEnv() });
    const auth = await authHeaders('early', { ttlS: 3_600 });
    const orchestrator = await startService('orchestrator', { NATS_URL: natsUrl, OPENAI_BASE_URL: `${mock.url}/v1`, OPENAI_API_KEY: 'k' });
    let nats: Awaited<ReturnType<typeof startNats>> | undefined;
    try {
      expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
      expect((await fetch(`${gateway.url}/readyz`)).status).toBe(503);
      expect((await fetch(`${orchestrator.url}/readyz`)).status).toBe(503);
      const refused = await postJson(`${gateway.url}/api/assistant/chat`, { user_id: 'early', message: 'anyone?' }, auth);
      expect(refused.status).toBe(503);
      expect(refused.body.error).toMatchObject({ code: 'bus_unavailable', retryable: true });

      nats = await startNats(port);
      await until(async () => (await fetch(`${gateway.url}/readyz`)).status === 200, 15_000, 'the gateway to be ready');
      await until(async () => (await fetch(`${orchestrator.url}/readyz`)).status === 200, 15_000, 'the orchestrator to be ready');
      await until(async () => (await postJson(`${gateway.url}/api/assistant/chat`, { user_id: 'early', message: `now? ${randomUUID()}` }, auth)).status === 200, 10_000, 'an answer');
    } finally {
      await Promise.all([gateway.stop(), orchestrator.stop(), mock.stop()]);
      await nats?.stop();
    }
  }, 60_000);
});

describe('NATS restarted while jobs wait in the work queue (kept in memory by the server)', () => {
  let stack: Stack;
  let restarted: Awaited<ReturnType<typeof startNats>> | undefined;
  beforeAll(async () => {
    // One slot: one job runs, the others wait in the queue when NATS goes away.
    stack = await startStack({ auth: 'open', orchestrators: 1, orchestratorEnv: { MAX_IN_FLIGHT: '1' }, mockLlmEnv: { MOCK_LLM_TTFT_MS: '1000' } });
  }, 60_000);
  afterAll(async () => {
    await restarted?.stop();
    await stack?.stop();
  });

  it('answers every request: queued jobs are published again after the reconnect, the running one is retried', async () => {
    const asks = Array.from({ length: 3 }, (_, i) => postJson(`${stack.url}/api/assistant/chat`, { user_id: `q${i}`, message: `queued through a restart ${randomUUID()}`, use_cache: false }));
    await new Promise((r) => setTimeout(r, 500));
    await stack.nats.stop();
    await new Promise((r) => setTimeout(r, 500));
    restarted = await startNats(stack.nats.port);
    const results = await Promise.race([Promise.all(asks), new Promise<undefined>((r) => setTimeout(r, 40_000))]);
    if (!results) {
      // What each service said, to see where a request stopped.
      for (const svc of [stack.gateway, ...stack.orchestrators]) console.log(svc.name, JSON.stringify(svc.logs.slice(-40).map((l) => [l.time, l.msg, l.request_id, l.state, l.attempt])));
    }
    expect(results?.map((r) => r.status)).toEqual([200, 200, 200]);
  }, 60_000);
});
