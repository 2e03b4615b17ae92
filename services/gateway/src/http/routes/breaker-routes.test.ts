import { afterEach, describe, expect, it } from 'vitest';
import { Subjects, encodeJson } from '@actionedx/shared';
import { adminHeaders, authHeaders, authRequiredConfig, startTestGateway, type TestGateway } from '@actionedx/testkit';

describe('GET /api/admin/breakers', () => {
  let gw: TestGateway | undefined;
  afterEach(async () => {
    await gw?.close();
    gw = undefined;
  });

  it("gives an administrator one orchestrator's model-target breakers, without the worker's id; refuses a user", async () => {
    gw = await startTestGateway(authRequiredConfig());
    const bus = gw.bus;
    bus.subscribe(Subjects.workerBreakers, (msg) => {
      bus.publish(msg.reply!, encodeJson({ ok: true, data: { worker_id: 'host-7', model_targets: { primary: 'open', backup: 'closed' } } }));
    }, { queue: 'orchestrators' });
    const res = await fetch(`${gw.baseUrl}/api/admin/breakers`, { headers: adminHeaders() });
    expect(res.status).toBe(200);
    const body = await res.text();
    expect(JSON.parse(body)).toEqual({ model_targets: { primary: 'open', backup: 'closed' }, scope: 'one orchestrator replica' });
    expect(body).not.toContain('host-7');
    expect((await fetch(`${gw.baseUrl}/api/admin/breakers`, { headers: await authHeaders('ana') })).status).toBe(403);
    expect((await fetch(`${gw.baseUrl}/api/admin/breakers`)).status).toBe(401);
    expect((await fetch(`${gw.baseUrl}/api/admin/breakers`, { method: 'POST', headers: adminHeaders() })).status).toBe(405);
  });

  it('answers 503 no_workers when no orchestrator listens', async () => {
    gw = await startTestGateway();
    const res = await fetch(`${gw.baseUrl}/api/admin/breakers`);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('no_workers');
  });
});
