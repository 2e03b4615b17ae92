import { randomUUID } from 'node:crypto';
import { postSse } from '@actionedx/testkit';

export interface TurnResult {
  ok: boolean;
  status: number;
  ms: number;
  resets: number;
  error?: string;
  requestId?: string;
}

/** A steady load: `clients` streaming clients, each asking a new question as soon as the last one ended. */
export function steadyLoad(url: string, opts: { clients: number; prefix: string }) {
  const results: TurnResult[] = [];
  let running = true;
  const loops = Array.from({ length: opts.clients }, async (_, c) => {
    while (running) {
      const t0 = performance.now();
      try {
        const { status, events } = await postSse(`${url}/api/assistant/chat`, { user_id: `${opts.prefix}-${c}`, message: `${opts.prefix} ${randomUUID()}` });
        const last = events.at(-1);
        const ok = status === 200 && last?.event === 'done';
        results.push({
          ok,
          status,
          ms: performance.now() - t0,
          resets: events.filter((e) => e.event === 'reset').length,
          requestId: events.find((e) => e.event === 'start')?.data?.request_id,
          ...(ok ? {} : { error: last?.event === 'error' ? String(last.data?.error?.code) : `status ${status}` }),
        });
      } catch (err) {
        results.push({ ok: false, status: 0, ms: performance.now() - t0, resets: 0, error: String(err) });
      }
    }
  });
  return {
    results,
    /** Stops asking; resolves when every client's last request has ended. */
    async stop(): Promise<TurnResult[]> {
      running = false;
      await Promise.all(loops);
      return results;
    },
  };
}

export const percentile = (xs: number[], p: number): number => {
  if (xs.length === 0) return Number.NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A short summary for the test log. */
export function summarize(results: TurnResult[]) {
  const ok = results.filter((r) => r.ok);
  const clean = ok.filter((r) => r.resets === 0).map((r) => r.ms);
  const failed = results.filter((r) => !r.ok);
  return {
    requests: results.length,
    failed: failed.length,
    errors: [...new Set(failed.map((r) => r.error))],
    reset: ok.filter((r) => r.resets > 0).length,
    p50_ms: Math.round(percentile(clean, 50)),
    p99_ms: Math.round(percentile(ok.map((r) => r.ms), 99)),
    max_ms: Math.round(Math.max(0, ...ok.map((r) => r.ms))),
  };
}
