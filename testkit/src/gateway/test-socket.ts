import { WebSocket } from 'ws';
import { WsServerMessageSchema } from '@actionedx/shared';

export type SocketMessage = { type: string; [key: string]: unknown };

/**
 * A WebSocket client for tests: every message is queued and read in order, and checked against the shared
 * protocol (`WsServerMessageSchema`): a frame that does not parse fails the read that reaches it.
 */
export class TestSocket {
  readonly received: SocketMessage[] = [];
  /** Messages that are not one JSON object of the protocol, with why. */
  readonly malformed: Array<{ raw: string; problem: string }> = [];
  private cursor = 0;
  private wake: (() => void) | undefined;
  closeCode: number | undefined;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const raw = String(data);
      const value = JSON.parse(raw) as SocketMessage;
      const parsed = WsServerMessageSchema.safeParse(value);
      if (!parsed.success) this.malformed.push({ raw, problem: JSON.stringify(parsed.error.issues) });
      this.received.push(value);
      this.wake?.();
    });
    ws.on('close', (code) => {
      this.closeCode = code;
      this.wake?.();
    });
  }

  /** Connects and reads the `connected` message. */
  static async open(url: string, headers: Record<string, string> = {}): Promise<TestSocket> {
    const ws = new WebSocket(url, { headers });
    const socket = new TestSocket(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    const hello = await socket.next();
    if (hello.type !== 'connected') throw new Error(`expected connected, got ${hello.type}`);
    return socket;
  }

  send(message: unknown): void {
    this.ws.send(typeof message === 'string' || Buffer.isBuffer(message) ? message : JSON.stringify(message));
  }

  /** The next message not read yet. */
  async next(timeoutMs = 3_000): Promise<SocketMessage> {
    const until = Date.now() + timeoutMs;
    while (this.cursor >= this.received.length) {
      if (this.closeCode !== undefined) throw new Error(`socket closed (${this.closeCode})`);
      const left = until - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a message');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    const message = this.received[this.cursor++]!;
    const bad = this.malformed[0];
    if (bad !== undefined) throw new Error(`a message outside the protocol: ${bad.raw} (${bad.problem})`);
    return message;
  }

  /** Messages up to and including the first of type `type`. */
  async until(type: string, timeoutMs = 3_000): Promise<SocketMessage[]> {
    const out: SocketMessage[] = [];
    for (;;) {
      const m = await this.next(timeoutMs);
      out.push(m);
      if (m.type === type) return out;
    }
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      this.ws.once('close', () => resolve());
      this.ws.close();
    });
  }
}
