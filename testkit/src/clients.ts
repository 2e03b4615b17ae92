import WebSocket from 'ws';

export interface HttpResult<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

export async function postJson<T = any>(url: string, body: unknown, headers: Record<string, string> = {}): Promise<HttpResult<T>> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

export async function getJson<T = any>(url: string, headers: Record<string, string> = {}): Promise<HttpResult<T>> {
  const res = await fetch(url, { headers });
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* Prometheus text and the like */
  }
  return { status: res.status, headers: res.headers, body };
}

export interface SseEvent {
  event: string;
  data: any;
}

/** Reads a Server-Sent Events body to its end, calling `onEvent` with each event's name and raw data. */
export async function readSse(body: AsyncIterable<Uint8Array>, onEvent: (event: string, data: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  let buf = '';
  for await (const part of body) {
    buf += decoder.decode(part, { stream: true });
    let sep;
    while ((sep = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, sep);
      buf = buf.slice(sep + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
      }
      if (data.length > 0) onEvent(event, data.join('\n'));
    }
  }
}

/** POST with `Accept: text/event-stream` and read the whole stream of events. */
export async function postSse(
  url: string,
  body: unknown,
  opts: { signal?: AbortSignal; onEvent?: (e: SseEvent) => void; headers?: Record<string, string> } = {},
): Promise<{ status: number; events: SseEvent[]; headers: Headers }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...opts.headers },
    body: JSON.stringify(body),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  const events: SseEvent[] = [];
  if (!res.body) return { status: res.status, events, headers: res.headers };
  await readSse(res.body as unknown as AsyncIterable<Uint8Array>, (event, raw) => {
    let data: any = raw;
    try {
      data = JSON.parse(raw);
    } catch {
      /* plain text data */
    }
    const e = { event, data };
    events.push(e);
    opts.onEvent?.(e);
  });
  return { status: res.status, events, headers: res.headers };
}

/** An open WebSocket with every message it received, parsed. */
export class WsClient {
  readonly messages: any[] = [];
  private waiters: Array<() => void> = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      this.messages.push(isBinary ? data : JSON.parse(data.toString()));
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static open(url: string, headers: Record<string, string> = {}): Promise<WsClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers });
      const client = new WsClient(ws);
      ws.once('open', () => resolve(client));
      ws.once('error', reject);
    });
  }

  send(msg: unknown): void {
    this.ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  }

  /** Resolves with the first message (from `from` on) that matches. */
  async next(pred: (m: any) => boolean, timeoutMs = 10_000, from = 0): Promise<any> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.slice(from).find(pred);
      if (found) return found;
      const left = end - Date.now();
      if (left <= 0) throw new Error(`no matching WebSocket message; got ${JSON.stringify(this.messages.slice(-5))}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  close(): void {
    this.ws.close();
  }
}

/** Sum of a counter in Prometheus text, over every label set. */
export function counterSum(metricsText: string, name: string, labelFilter?: (labels: string) => boolean): number {
  let sum = 0;
  for (const line of metricsText.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([0-9.eE+-]+|NaN)$/.exec(line);
    if (!m || m[1] !== name) continue;
    if (labelFilter && !labelFilter(m[2] ?? '')) continue;
    sum += Number(m[3]);
  }
  return sum;
}

/** Upstream calls mock-llm served, from its own /metrics. */
export async function mockCompletions(mockLlmUrl: string): Promise<number> {
  const res = await fetch(`${mockLlmUrl}/metrics`);
  return counterSum(await res.text(), 'mock_llm_completions_total');
}

/** `PUT /mock/config` on mock-llm (latency, length, faults). */
export async function setMock(mockLlmUrl: string, config: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${mockLlmUrl}/mock/config`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(config) });
  if (!res.ok) throw new Error(`PUT /mock/config: ${res.status} ${await res.text()}`);
}

/** mock-llm's counters: completions, streams, client disconnects, in flight now and at the peak. */
export async function mockStats(mockLlmUrl: string): Promise<{ completions: number; streams: number; client_disconnects: number; in_flight: number; peak_in_flight: number }> {
  return (await fetch(`${mockLlmUrl}/mock/stats`)).json() as never;
}

/** Starts a new peak of concurrent completions at mock-llm (the current count). */
export async function resetMockPeak(mockLlmUrl: string): Promise<void> {
  await fetch(`${mockLlmUrl}/mock/stats/reset-peak`, { method: 'POST' });
}
