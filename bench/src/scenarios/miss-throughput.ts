import { postJson } from '@actionedx/testkit';
import { record, turnOrder, type Scenario, type Side } from '../lib/context.js';
import { metricsProbe, pidProbe, redisProbe, type CpuProbe } from '../lib/probes.js';
import { noteBaselineMemory } from '../lib/memory.js';
import { nextMessage, spawnNode, type NodeChild } from '../lib/procs.js';
import type { Row } from '../lib/report.js';
import { startBenchStack } from '../lib/stack.js';
import { runWrk, runWrkWithCpu, wrkErrors, type WrkCpuResult } from '../lib/wrk.js';
import { DIRECT_MODEL, DIRECT_SYSTEM } from './streaming.js';

const CONNECTIONS = 50;
const TOKENS = 48;
/** The realtime_tutoring task's max_tokens, which the orchestrator sends: the baseline sends the same. */
const MAX_TOKENS = 600;
const BODY = { user_id: 'bench-user', message: 'What is retrieval practice and how do I use it in class?', use_cache: false };

interface SideRun {
  url: string;
  probes: CpuProbe[];
  runs: WrkCpuResult[];
}

/**
 * Scenario 6: throughput of uncached requests, every one a streamed model call (mock-llm, no latency, 48-token
 * answers), against the bare miss pipeline: express → NATS request → a worker making the same streamed call with
 * the openai SDK and replying with the text. wrk drives both (a Lua `request` function makes every body unique):
 * it costs a few µs per request against milliseconds for either side, where Node client processes would cost
 * a tenth of a millisecond or more of the same two cores.
 */
export const missThroughput: Scenario = {
  id: 'miss-throughput',
  title: `Miss throughput over REST: ${CONNECTIONS} connections, use_cache false, unique messages, ${TOKENS}-token streamed answers`,
  async run(ctx, out) {
    out.baseline = `express 5 handler → one NATS request → worker: one streamed openai SDK call to the same mock-llm (same options), text concatenated → reply (2 Node processes, same nats-server and mock-llm)`;
    const stack = await startBenchStack({ scenario: 'miss-throughput', orchestrators: 1, profile: ctx.profile });
    let front: NodeChild | undefined;
    let worker: NodeChild | undefined;
    try {
      await stack.mock({ ttft_ms: 0, tokens_per_second: 0, completion_tokens: TOKENS });
      const url = `${stack.url}/api/assistant/chat`;
      const check = await postJson(url, { ...BODY, message: `${BODY.message} (check ${Date.now()})` });
      if (check.status !== 200 || check.body?.cached !== false) {
        throw new Error(`the product did not answer from the model: ${check.status} ${JSON.stringify(check.body).slice(0, 300)}`);
      }

      worker = spawnNode('baseline/miss-worker.js', [], {
        NATS_URL: stack.nats.url,
        OPENAI_BASE_URL: `${stack.mockLlm.url}/v1`,
        MODEL: DIRECT_MODEL,
        SYSTEM: DIRECT_SYSTEM,
        MAX_TOKENS: String(MAX_TOKENS),
        SUBJECT: 'bench.baseline.miss',
      });
      await nextMessage(worker, (m) => m?.ready === true, 10_000, 'baseline miss worker');
      front = spawnNode('baseline/http-front.js', [], { NATS_URL: stack.nats.url, SUBJECT: 'bench.baseline.miss', TIMEOUT_MS: '30000' });
      const port = (await nextMessage<{ listening: number }>(front, (m) => typeof m?.listening === 'number', 10_000, 'baseline front')).listening;
      const baseUrl = `http://127.0.0.1:${port}/api/assistant/chat`;
      const bcheck = await postJson(baseUrl, { ...BODY, message: `${BODY.message} (check ${Date.now()})` });
      const baseText = (bcheck.body as { response?: unknown } | undefined)?.response;
      if (bcheck.status !== 200 || typeof baseText !== 'string' || baseText.length === 0) {
        throw new Error(`the baseline did not answer: ${bcheck.status} ${JSON.stringify(bcheck.body).slice(0, 300)}`);
      }
      out.details.answer = {
        product_response_chars: String(check.body?.response ?? '').length,
        baseline_response_chars: baseText.length,
        product_http_body_bytes: Buffer.byteLength(JSON.stringify(check.body)),
        baseline_http_body_bytes: Buffer.byteLength(JSON.stringify(bcheck.body)),
      };

      const shared = [metricsProbe('mock-llm', stack.mockLlm.url), pidProbe('nats-server', stack.natsPid), redisProbe(() => stack.redis.info('cpu'))];
      const sides: Record<Side, SideRun> = {
        product: { url, probes: [metricsProbe('gateway', stack.gateway.opsUrl), metricsProbe('orchestrator', stack.orchestrators[0]!.url), ...shared], runs: [] },
        baseline: { url: baseUrl, probes: [pidProbe('front', front.pid), pidProbe('worker', worker.pid), ...shared], runs: [] },
      };
      const d = ctx.secs(8, 2);
      // A tag per run keeps every message of the whole bench distinct.
      const tag = (side: Side, what: string) => `${side}-${what}-${process.pid}-${Date.now().toString(36)}`;
      for (const name of turnOrder(0)) {
        ctx.log(`  warm-up ${name}`);
        await runWrk(ctx.wrk, { url: sides[name].url, body: BODY, connections: CONNECTIONS, durationS: ctx.secs(3, 1), unique: tag(name, 'warm') });
      }
      for (let r = 0; r < ctx.rounds; r++) {
        for (const name of turnOrder(r)) {
          const s = sides[name];
          ctx.log(`  round ${r + 1}/${ctx.rounds}: ${name} at ${CONNECTIONS} connections, ${d} s`);
          s.runs.push(await runWrkWithCpu(ctx.wrk, { url: s.url, body: BODY, connections: CONNECTIONS, durationS: d, unique: tag(name, `r${r}`) }, s.probes));
        }
        const p = sides.product.runs[r]!;
        const b = sides.baseline.runs[r]!;
        const ms = (w: WrkCpuResult, keys: string[]) => keys.reduce((a, k) => a + (w.cpuUsPerReq[k] ?? Number.NaN), 0) / 1000;
        // The product's gateway and orchestrator stand where the baseline's front and worker do.
        const asProduct = (k: string) => (k === 'front' ? 'gateway' : k === 'worker' ? 'orchestrator' : k);
        const cpuRow = (label: string, keys: string[], extra: Partial<Row> = {}): Row => ({
          metric: label,
          unit: 'ms',
          product: ms(p, keys.map(asProduct)),
          baseline: ms(b, keys),
          ...extra,
        });
        record(
          out,
          r,
          { metric: `throughput @${CONNECTIONS} conn`, unit: 'req/s', product: p.completed / p.durationS, baseline: b.completed / b.durationS, goal: { kind: 'min_ratio', value: 0.8 } },
          cpuRow('server CPU per request (gateway + orchestrator) vs (front + worker)', ['front', 'worker'], { goal: { kind: 'max', value: 2 } }),
          cpuRow('CPU/req gateway vs express front', ['front']),
          cpuRow('CPU/req orchestrator vs SDK worker', ['worker']),
          cpuRow('CPU/req mock-llm', ['mock-llm']),
          cpuRow('CPU/req nats-server', ['nats-server']),
          cpuRow('CPU/req redis-server', ['redis-server']),
          cpuRow('CPU/req all of the above', ['front', 'worker', 'mock-llm', 'nats-server', 'redis-server']),
          cpuRow('CPU/req wrk (load generator)', ['wrk']),
          { metric: `p50 @${CONNECTIONS} conn`, unit: 'ms', product: p.p50, baseline: b.p50 },
          { metric: `p99 @${CONNECTIONS} conn`, unit: 'ms', product: p.p99, baseline: b.p99 },
          { metric: 'errors (non-2xx, socket)', unit: '', product: wrkErrors(p), baseline: wrkErrors(b), goal: { kind: 'eq', value: 0 } },
        );
      }
      out.details.rounds = Object.fromEntries(Object.entries(sides).map(([name, s]) => [name, s.runs]));
      // Their memory after the load, beside the gateway's and the orchestrator's when the stack stops.
      noteBaselineMemory({ scenario: 'miss-throughput', service: 'express front', role: 'gateway' }, front.pid);
      noteBaselineMemory({ scenario: 'miss-throughput', service: 'SDK worker', role: 'orchestrator' }, worker.pid);
      out.details.cpu_sources = Object.fromEntries(Object.entries(sides).map(([name, s]) => [name, s.probes.map((pr) => `${pr.name}: ${pr.source}`)]));
      out.details.settings = {
        connections: CONNECTIONS,
        duration_s: d,
        completion_tokens: TOKENS,
        ttft_ms: 0,
        tokens_per_second: 0,
        use_cache: false,
        load_generator: 'wrk, 1 thread, a Lua request() function appending a per-run tag and a counter to the message',
        cpu_per_request: 'CPU seconds of each process between readings just before and after each wrk run, divided by the 2xx answers of that run',
      };
    } finally {
      await Promise.all([front?.stop(), worker?.stop()]);
      await stack.stop();
    }
  },
};
