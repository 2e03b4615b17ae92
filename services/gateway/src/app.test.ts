import { afterEach, describe, expect, it } from 'vitest';
import {
  CancelRecorder,
  FakeWorker,
  answerWith,
  sleep,
  waitFor,
  startTestGateway,
  type TestGateway,
  TestSocket,
} from '@actionedx/testkit';

let gw: TestGateway | undefined;

afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

const chat = (g: TestGateway, headers: Record<string, string> = {}): Promise<Response> =>
  fetch(`${g.baseUrl}/api/assistant/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ user_id: 'u1', message: 'hello' }),
  });

describe('graceful shutdown', () => {
  it('lets a request in flight finish, refuses new work, then closes', async () => {
    const g = (gw = await startTestGateway());
    new FakeWorker(g.bus, {
      script: async (ctl) => {
        for (let i = 0; i < 6; i++) {
          await sleep(30);
          ctl.heartbeat();
        }
        ctl.answer(['finished']);
      },
    });
    const pending = chat(g);
    await waitFor(() => g.gateway.dispatcher.inFlight === 1, 1_000, 'the request');
    const closed = g.gateway.close({ graceMs: 5_000 });
    await expect(g.gateway.dispatcher.dispatch({} as never, { request_id: 'late' })).rejects.toMatchObject({
      code: 'shutting_down',
    });
    const res = await pending;
    expect(res.status).toBe(200);
    expect(((await res.json()) as { response: string }).response).toBe('finished');
    await closed;
    expect(g.gateway.server.listening).toBe(false);
  });

  it('ends what is still running after the grace period with 503 shutting_down and a cancel', async () => {
    const g = (gw = await startTestGateway());
    const cancels = new CancelRecorder(g.bus);
    new FakeWorker(g.bus, {
      script: async (ctl) => {
        for (let i = 0; i < 100 && g.bus.state() !== 'closed'; i++) {
          await sleep(20);
          ctl.heartbeat();
        }
      },
    });
    const pending = chat(g, { 'x-request-id': 'slow-1' });
    await waitFor(() => g.gateway.dispatcher.inFlight === 1, 1_000, 'the request');
    await g.gateway.close({ graceMs: 100 });
    const res = await pending;
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('shutting_down');
    expect(cancels.has('slow-1')).toBe(true);
  });

  it('closes WebSockets with 1001 (going away)', async () => {
    const g = (gw = await startTestGateway());
    new FakeWorker(g.bus, { script: answerWith(['x']) });
    const ws = await TestSocket.open(`${g.wsUrl}/ws/assistant/s1?user_id=u1`);
    await g.gateway.close({ graceMs: 100 });
    await waitFor(() => ws.closeCode !== undefined, 2_000, 'the close');
    expect(ws.closeCode).toBe(1001);
  });
});
