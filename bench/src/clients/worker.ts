/**
 * The load side of the streaming, latency, burst and WebSocket scenarios: a Node process of its own, so it never
 * shares an event loop with what it measures. The parent sends jobs over IPC (`{id, job}`) and gets
 * `{id, ok, result | error}` back. HTTP request/response load at a fixed connection count uses wrk instead.
 */
import OpenAI from 'openai';
import WebSocket from 'ws';
import { readSse } from '@actionedx/testkit';

// ---------------------------------------------------------------- targets and samples

/** Something that answers one chat message, as a stream or as one body. */
export type Target =
  /** The gateway over REST, one JSON body. */
  | { kind: 'rest'; url: string; body: Record<string, unknown> }
  /** The gateway over Server-Sent Events. */
  | { kind: 'sse'; url: string; body: Record<string, unknown> }
  /**
   * A WebSocket session (the gateway, or the bare ws server): `{message, ...payload}` → frames up to `response`.
   * `{session}` and `{user}` in the URL are replaced by an id unique to the session.
   */
  | { kind: 'ws'; url: string; payload: Record<string, unknown> }
  /** The openai SDK against mock-llm directly, streaming. */
  | { kind: 'sdk-stream'; baseURL: string; model: string; system: string }
  /** The openai SDK against mock-llm directly, one JSON answer. */
  | { kind: 'sdk-json'; baseURL: string; model: string; system: string };

export interface Sample {
  ok: boolean;
  error?: string;
  /** Milliseconds from sending to the first piece of content. */
  ttfc: number;
  /** Milliseconds from sending to the end of the answer. */
  dur: number;
  /** Characters of answer text received. */
  chars: number;
  /** Frames (chunk events, WebSocket chunk messages, SDK chunks) that carried content. */
  frames: number;
  /** Every WebSocket message of the exchange, as received (for the bare-ws replay). */
  raw?: string[];
  /** The gateway's own `latency_ms` for the request (REST answers). */
  inner?: number;
}

interface Session {
  run(message: string, record: boolean): Promise<Sample>;
  close(): void;
}

const now = () => performance.now();
const fail = (t0: number, error: unknown): Sample => ({
  ok: false,
  error: error instanceof Error ? error.message : String(error),
  ttfc: Number.NaN,
  dur: now() - t0,
  chars: 0,
  frames: 0,
});

const sdkClients = new Map<string, OpenAI>();
function sdk(baseURL: string): OpenAI {
  let c = sdkClients.get(baseURL);
  if (!c) {
    c = new OpenAI({ baseURL, apiKey: 'bench', maxRetries: 0, timeout: 30_000 });
    sdkClients.set(baseURL, c);
  }
  return c;
}

async function openSession(target: Target, id: string): Promise<Session> {
  switch (target.kind) {
    case 'rest':
      return {
        async run(message) {
          const t0 = now();
          try {
            const res = await fetch(target.url, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ ...target.body, message }),
            });
            const text = await res.text();
            const dur = now() - t0;
            if (res.status !== 200) return { ...fail(t0, `HTTP ${res.status} ${text.slice(0, 200)}`), dur };
            const body = JSON.parse(text) as { response?: string; latency_ms?: number };
            const chars = body.response?.length ?? 0;
            return { ok: true, ttfc: dur, dur, chars, frames: 1, ...(typeof body.latency_ms === 'number' ? { inner: body.latency_ms } : {}) };
          } catch (err) {
            return fail(t0, err);
          }
        },
        close() {},
      };
    case 'sse':
      return {
        async run(message) {
          const t0 = now();
          try {
            const res = await fetch(target.url, {
              method: 'POST',
              headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
              body: JSON.stringify({ ...target.body, message }),
            });
            if (res.status !== 200 || !res.body) return fail(t0, `HTTP ${res.status} ${(await res.text()).slice(0, 200)}`);
            let ttfc = Number.NaN;
            let chars = 0;
            let frames = 0;
            let terminal: 'done' | 'error' | undefined;
            let error: string | undefined;
            await readSse(res.body as unknown as AsyncIterable<Uint8Array>, (event, data) => {
              if (event === 'chunk') {
                const content = (JSON.parse(data) as { content?: string }).content ?? '';
                if (content.length > 0) {
                  if (frames === 0) ttfc = now() - t0;
                  frames++;
                  chars += content.length;
                }
              } else if (event === 'done') terminal = 'done';
              else if (event === 'error') {
                terminal = 'error';
                error = data.slice(0, 300);
              }
            });
            const dur = now() - t0;
            if (terminal !== 'done') return { ...fail(t0, error ?? 'the stream ended without a done event'), dur };
            return { ok: true, ttfc, dur, chars, frames };
          } catch (err) {
            return fail(t0, err);
          }
        },
        close() {},
      };
    case 'ws': {
      const ws = new WebSocket(target.url.replaceAll('{session}', id).replaceAll('{user}', id));
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('WebSocket open timed out')), 15_000);
        ws.once('open', () => {
          clearTimeout(t);
          resolve();
        });
        ws.once('error', (e) => {
          clearTimeout(t);
          reject(e);
        });
      });
      let current: ((raw: string) => void) | undefined;
      let closedWith: string | undefined;
      ws.on('message', (data) => current?.(data.toString()));
      ws.on('close', (code) => {
        closedWith = `WebSocket closed (${code})`;
        current?.('{"type":"__closed"}');
      });
      ws.on('error', () => {});
      return {
        run(message, record) {
          const t0 = now();
          if (closedWith) return Promise.resolve(fail(t0, closedWith));
          return new Promise<Sample>((resolve) => {
            let ttfc = Number.NaN;
            let chars = 0;
            let frames = 0;
            const raw: string[] | undefined = record ? [] : undefined;
            const timer = setTimeout(() => finish(fail(t0, 'no response within 30 s')), 30_000);
            const finish = (s: Sample) => {
              clearTimeout(timer);
              current = undefined;
              resolve(raw && s.ok ? { ...s, raw } : s);
            };
            current = (text) => {
              raw?.push(text);
              const m = JSON.parse(text) as { type?: string; content?: string; message?: string; code?: string };
              switch (m.type) {
                case 'stream_chunk': {
                  const n = m.content?.length ?? 0;
                  if (n > 0) {
                    if (frames === 0) ttfc = now() - t0;
                    frames++;
                    chars += n;
                  }
                  return;
                }
                case 'response':
                  return finish({ ok: true, ttfc, dur: now() - t0, chars, frames });
                case 'error':
                  return finish(fail(t0, `${m.code ?? 'error'}: ${m.message ?? text.slice(0, 200)}`));
                case '__closed':
                  return finish(fail(t0, closedWith ?? 'closed'));
                default:
                  return;
              }
            };
            ws.send(JSON.stringify({ ...target.payload, message }));
          });
        },
        close: () => ws.close(),
      };
    }
    case 'sdk-stream':
      return {
        async run(message) {
          const t0 = now();
          try {
            const stream = await sdk(target.baseURL).chat.completions.create({
              model: target.model,
              messages: [
                { role: 'system', content: target.system },
                { role: 'user', content: message },
              ],
              stream: true,
            });
            let ttfc = Number.NaN;
            let chars = 0;
            let frames = 0;
            for await (const chunk of stream) {
              const content = chunk.choices[0]?.delta?.content;
              if (content) {
                if (frames === 0) ttfc = now() - t0;
                frames++;
                chars += content.length;
              }
            }
            return { ok: true, ttfc, dur: now() - t0, chars, frames };
          } catch (err) {
            return fail(t0, err);
          }
        },
        close() {},
      };
    case 'sdk-json':
      return {
        async run(message) {
          const t0 = now();
          try {
            const c = await sdk(target.baseURL).chat.completions.create({
              model: target.model,
              messages: [
                { role: 'system', content: target.system },
                { role: 'user', content: message },
              ],
            });
            const dur = now() - t0;
            return { ok: true, ttfc: dur, dur, chars: c.choices[0]?.message?.content?.length ?? 0, frames: 1 };
          } catch (err) {
            return fail(t0, err);
          }
        },
        close() {},
      };
  }
}

// ---------------------------------------------------------------- jobs

export interface Tally {
  requests: number;
  errors: number;
  errorSamples: string[];
  chars: number;
  frames: number;
  ttfc: number[];
  dur: number[];
  /** The gateway's `latency_ms` of each answer that had one. */
  inner: number[];
}

const newTally = (): Tally => ({ requests: 0, errors: 0, errorSamples: [], chars: 0, frames: 0, ttfc: [], dur: [], inner: [] });

function add(t: Tally, s: Sample): void {
  t.requests++;
  if (!s.ok) {
    t.errors++;
    if (t.errorSamples.length < 5) t.errorSamples.push(s.error ?? 'error');
    return;
  }
  t.chars += s.chars;
  t.frames += s.frames;
  t.ttfc.push(s.ttfc);
  t.dur.push(s.dur);
  if (s.inner !== undefined) t.inner.push(s.inner);
}

let messageN = 0;
const uniqueMessage = (prefix: string) => `${prefix} [${process.pid}.${++messageN}.${Math.random().toString(36).slice(2, 8)}]`;

export interface LoadJob {
  type: 'load';
  target: Target;
  /** Sessions (loops) running at once. */
  concurrency: number;
  durationMs: number;
  /** Stop starting new requests after this many in all. */
  maxRequests: number;
  /** A fixed message (cache hits) or a prefix made unique per request (misses). */
  message: string;
  unique: boolean;
  /** Requests per session before the clock starts (JIT, connections). */
  warmup?: number;
  /** Keep the raw WebSocket messages of this many exchanges, sampled uniformly. */
  record?: number;
  /** After the warm-up, send `{loadWarm: id}` and start the clock only on `{go: id}` from the parent. */
  sync?: boolean;
}

/** Loads waiting for their `go`, by job id. */
const goWaiters = new Map<number, () => void>();

export interface LoadResult extends Tally {
  wallMs: number;
  cpuS: number;
  records: string[][];
}

async function load(job: LoadJob, id: number): Promise<LoadResult> {
  const sessions = await Promise.all(Array.from({ length: job.concurrency }, (_, i) => openSession(job.target, `b${process.pid}-${i}-${Date.now().toString(36)}`)));
  const msg = () => (job.unique ? uniqueMessage(job.message) : job.message);
  if (job.warmup) await Promise.all(sessions.map(async (s) => { for (let i = 0; i < job.warmup!; i++) await s.run(msg(), false); }));
  if (job.sync) {
    // Sessions open and warm: wait until every client process is, so that their clocks start together.
    const go = new Promise<void>((resolve) => goWaiters.set(id, resolve));
    process.send!({ loadWarm: id });
    await go;
  }
  const tally = newTally();
  const records: string[][] = [];
  let started = 0;
  const cpu0 = process.cpuUsage();
  const t0 = now();
  const end = t0 + job.durationMs;
  // A uniform sample of the exchanges (reservoir), not only the first ones, which start all at once.
  const keep = job.record ?? 0;
  let seen = 0;
  await Promise.all(
    sessions.map(async (s) => {
      while (now() < end && started < job.maxRequests) {
        started++;
        const sample = await s.run(msg(), keep > 0);
        add(tally, sample);
        if (!sample.raw) continue;
        seen++;
        if (records.length < keep) records.push(sample.raw);
        else {
          const j = Math.floor(Math.random() * seen);
          if (j < keep) records[j] = sample.raw;
        }
      }
    }),
  );
  const wallMs = now() - t0;
  const cpu = process.cpuUsage(cpu0);
  for (const s of sessions) s.close();
  return { ...tally, wallMs, cpuS: (cpu.user + cpu.system) / 1e6, records };
}

export interface SeqJob {
  type: 'seq';
  /** Run in turns, one request of each target per round, so drift hits them all alike. */
  targets: Record<string, Target>;
  rounds: number;
  maxMs: number;
  message: string;
  warmup?: number;
}

async function seq(job: SeqJob): Promise<Record<string, Tally>> {
  const names = Object.keys(job.targets);
  const sessions: Record<string, Session> = {};
  for (const n of names) sessions[n] = await openSession(job.targets[n]!, `s${process.pid}-${n}-${Date.now().toString(36)}`);
  for (let i = 0; i < (job.warmup ?? 0); i++) for (const n of names) await sessions[n]!.run(uniqueMessage(job.message), false);
  const out: Record<string, Tally> = Object.fromEntries(names.map((n) => [n, newTally()]));
  const end = now() + job.maxMs;
  for (let r = 0; r < job.rounds && now() < end; r++) {
    // Rotate the order each round: no target always follows the same one.
    for (let k = 0; k < names.length; k++) {
      const n = names[(r + k) % names.length]!;
      add(out[n]!, await sessions[n]!.run(uniqueMessage(job.message), false));
    }
  }
  for (const s of Object.values(sessions)) s.close();
  return out;
}

export interface BurstJob {
  type: 'burst';
  url: string;
  body: Record<string, unknown>;
  n: number;
}

export interface BurstResult {
  statuses: number[];
  responses: string[];
  cached: boolean[];
  errors: string[];
  ms: number;
}

async function burst(job: BurstJob): Promise<BurstResult> {
  const t0 = now();
  const results = await Promise.all(
    Array.from({ length: job.n }, async () => {
      try {
        const res = await fetch(job.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(job.body) });
        const text = await res.text();
        let body: { response?: string; cached?: boolean } = {};
        try {
          body = JSON.parse(text);
        } catch {
          /* not JSON */
        }
        return { status: res.status, response: body.response ?? text.slice(0, 200), cached: body.cached === true, error: '' };
      } catch (err) {
        return { status: 0, response: '', cached: false, error: String(err) };
      }
    }),
  );
  return {
    statuses: results.map((r) => r.status),
    responses: results.map((r) => r.response),
    cached: results.map((r) => r.cached),
    errors: results.filter((r) => r.error).map((r) => r.error).slice(0, 5),
    ms: now() - t0,
  };
}

/** Idle WebSockets held open until `idle-close`. */
const idle: WebSocket[] = [];

export interface IdleOpenJob {
  type: 'idle-open';
  /** With `{i}` replaced by a number unique to each connection. */
  url: string;
  n: number;
  parallel: number;
}

async function idleOpen(job: IdleOpenJob): Promise<{ opened: number; failed: number; errors: string[]; ms: number }> {
  const t0 = now();
  let next = 0;
  let opened = 0;
  let failed = 0;
  const errors: string[] = [];
  const one = (i: number) =>
    new Promise<void>((resolve) => {
      const ws = new WebSocket(job.url.replaceAll('{i}', `${process.pid}-${i}`));
      const t = setTimeout(() => {
        failed++;
        if (errors.length < 5) errors.push('open timed out');
        ws.terminate();
        resolve();
      }, 20_000);
      ws.once('open', () => {
        clearTimeout(t);
        opened++;
        idle.push(ws);
        resolve();
      });
      ws.once('error', (e) => {
        clearTimeout(t);
        failed++;
        if (errors.length < 5) errors.push(e.message);
        resolve();
      });
      ws.on('message', () => {});
    });
  await Promise.all(
    Array.from({ length: Math.min(job.parallel, job.n) }, async () => {
      while (next < job.n) await one(next++);
    }),
  );
  return { opened, failed, errors, ms: now() - t0 };
}

async function idleClose(): Promise<{ closed: number; stillOpen: number }> {
  const all = idle.splice(0);
  const stillOpen = all.filter((w) => w.readyState === WebSocket.OPEN).length;
  await Promise.all(
    all.map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.readyState === WebSocket.CLOSED) return resolve();
          const t = setTimeout(() => {
            w.terminate();
            resolve();
          }, 3000);
          w.once('close', () => {
            clearTimeout(t);
            resolve();
          });
          w.close();
        }),
    ),
  );
  return { closed: all.length, stillOpen };
}

export type Job = LoadJob | SeqJob | BurstJob | IdleOpenJob | { type: 'idle-close' };

async function handle(job: Job, id: number): Promise<unknown> {
  switch (job.type) {
    case 'load':
      return load(job, id);
    case 'seq':
      return seq(job);
    case 'burst':
      return burst(job);
    case 'idle-open':
      return idleOpen(job);
    case 'idle-close':
      return idleClose();
  }
}

process.on('message', (m: { id: number; job: Job } | { go: number }) => {
  if ('go' in m) {
    goWaiters.get(m.go)?.();
    goWaiters.delete(m.go);
    return;
  }
  handle(m.job, m.id).then(
    (result) => process.send!({ id: m.id, ok: true, result }),
    (err: unknown) => process.send!({ id: m.id, ok: false, error: err instanceof Error ? `${err.message}` : String(err) }),
  );
});
process.on('disconnect', () => process.exit(0));
process.send!({ ready: true });
