import { writeFileSync } from 'node:fs';
import WebSocket from 'ws';

/**
 * The V8 CPU profiler of another Node process, through its inspector (`--inspect=127.0.0.1:<port>` in
 * NODE_OPTIONS: Node 20 refuses `--cpu-prof` there). Started once the service listens and stopped before it
 * is stopped, so the profile holds the scenario's work and not the start-up.
 */
export class RemoteProfiler {
  private n = 0;
  private readonly pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString()) as { id?: number; result?: unknown; error?: { message: string } };
      if (m.id === undefined) return;
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error) p.reject(new Error(m.error.message));
      else p.resolve(m.result);
    });
    ws.on('error', () => {});
  }

  static async attach(inspectPort: number): Promise<RemoteProfiler> {
    const list = (await (await fetch(`http://127.0.0.1:${inspectPort}/json/list`)).json()) as Array<{ webSocketDebuggerUrl: string }>;
    const url = list[0]?.webSocketDebuggerUrl;
    if (!url) throw new Error(`no inspector target on port ${inspectPort}`);
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new RemoteProfiler(ws);
  }

  private call<T = unknown>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = ++this.n;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  async start(intervalUs = 500): Promise<void> {
    await this.call('Profiler.enable');
    await this.call('Profiler.setSamplingInterval', { interval: intervalUs });
    await this.call('Profiler.start');
  }

  /** Stops the profiler and writes the .cpuprofile; `start` may follow for the next section. */
  async stopTo(file: string): Promise<void> {
    const { profile } = await this.call<{ profile: unknown }>('Profiler.stop');
    writeFileSync(file, JSON.stringify(profile));
  }

  close(): void {
    this.ws.close();
  }
}
