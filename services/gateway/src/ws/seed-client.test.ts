import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import { seedClientFor } from '@actionedx/testkit';
import { FakeWorker, answerWith, waitFor, startTestGateway, type TestGateway } from '@actionedx/testkit';

/** The seed's "WebSocket Client Example", byte for byte (one copy, in testkit); only the host is rewritten. */
const clientFor = (wsUrl: string): string => seedClientFor(wsUrl.replace(/^ws:\/\//, ''));

let gw: TestGateway;
const globals = globalThis as { WebSocket?: unknown };
let savedWebSocket: unknown;

beforeEach(async () => {
  gw = await startTestGateway();
  savedWebSocket = globals.WebSocket;
  globals.WebSocket = WebSocket; // Node 20 has no global WebSocket; ws's class stands in, as in a browser
});

afterEach(async () => {
  globals.WebSocket = savedWebSocket;
  vi.restoreAllMocks();
  await gw.close();
});

describe("the seed's WebSocket client example", () => {
  it('works unchanged: welcome, thinking, chunks, response and suggestions', async () => {
    const worker = new FakeWorker(gw.bus, { script: answerWith(['Start with ', 'your vision ', 'pillar.']) });
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    // The seed's client runs verbatim, as a browser would run it: evaluating its text is the point.
    // eslint-disable-next-line @typescript-eslint/no-implied-eval
    const ws = new Function(`${clientFor(gw.wsUrl)}\nreturn ws;`)() as WebSocket;
    try {
      await waitFor(() => log.mock.calls.some((c) => c[0] === 'Suggestions:'), 3_000, 'the response');
      const lines = log.mock.calls.map((c) => c.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '));
      expect(lines).toContain('Connected!');
      expect(lines).toContain('Welcome: Connected to ActionEDx assistant');
      expect(lines.filter((l) => !l.startsWith('Connected!') && !l.startsWith('Welcome:'))).toEqual([
        'AI is thinking...',
        'Chunk: Start with ',
        'Chunk: your vision ',
        'Chunk: pillar.',
        'Response: Start with your vision pillar.',
        'Suggestions: ["Try the next pillar"]',
      ]);
      expect(error).not.toHaveBeenCalled();
      expect(worker.jobs[0]!.job.request).toMatchObject({
        user_id: 'user-456',
        message: 'Help me with 9-Pillar audit',
        mode: 'strategist',
        session_id: 'session-123',
        context: { current_track: 'innovation-foundations' },
      });
    } finally {
      ws.close();
      worker.stop();
    }
  });

  it("reports a failure through the example's error branch", async () => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    vi.spyOn(console, 'log').mockImplementation(() => {});
    // The seed's client runs verbatim, as a browser would run it: evaluating its text is the point.
    // eslint-disable-next-line @typescript-eslint/no-implied-eval
    const ws = new Function(`${clientFor(gw.wsUrl)}\nreturn ws;`)() as WebSocket;
    try {
      await waitFor(() => error.mock.calls.length > 0, 3_000, 'the error');
      expect(error.mock.calls[0]).toEqual(['Error:', 'No orchestrator is available.']);
    } finally {
      ws.close();
    }
  });
});
