import { postJson } from '@actionedx/testkit';
import { record, turnOrder, type Scenario, type Side } from '../lib/context.js';
import { histTotals, meanMsBetween, metricsProbe, pidProbe, redisProbe, type CpuProbe } from '../lib/probes.js';
import { noteBaselineMemory } from '../lib/memory.js';
import { nextMessage, spawnNode, type NodeChild } from '../lib/procs.js';
import type { Row } from '../lib/report.js';
import { startBenchStack } from '../lib/stack.js';
import { runWrk, runWrkWithCpu, wrkErrors, type WrkCpuResult, type WrkResult } from '../lib/wrk.js';

const BODY = {
  user_id: 'bench-user',
  message: 'How do I plan formative assessment for a mixed-ability class of thirty?',
  task_type: 'realtime_tutoring',
};
const BASELINE_KEY = 'bench:baseline:answer';

interface SideRun {
  url: string;
  probes: CpuProbe[];
  c1: Array<WrkResult & { timers?: Record<string, number> }>;
  c50: WrkCpuResult[];
}

/** Scenario 1: a warm cache hit through the gateway against express → NATS → Redis GET with nothing else. */
export const cached: Scenario = {
  id: 'cached',
  title: 'Cached hit over REST (POST /api/assistant/chat, same message, cache warm)',
  async run(ctx, out) {
    out.baseline = 'express 5 handler → one NATS request → worker: one Redis GET → reply (2 Node processes, same nats-server and Redis)';
    const stack = await startBenchStack({ scenario: 'cached', orchestrators: 1, profile: ctx.profile });
    let front: NodeChild | undefined;
    let worker: NodeChild | undefined;
    try {
      const url = `${stack.url}/api/assistant/chat`;
      const first = await postJson(url, BODY);
      if (first.status !== 200) throw new Error(`warm-up request answered ${first.status}: ${JSON.stringify(first.body).slice(0, 300)}`);
      const second = await postJson(url, BODY);
      if (second.status !== 200 || second.body?.cached !== true) {
        throw new Error(`the second identical request was not a cache hit: ${second.status} cached=${second.body?.cached}`);
      }
      // The baseline answers with the bytes the product stored for this question.
      const keys = (await stack.redis.keys('ai_cache:*')).filter((k) => k.split(':').length === 3);
      const stored = keys[0] ? await stack.redis.getBuffer(keys[0]) : null;
      const value = stored && stored.length > 0 ? stored : Buffer.from(JSON.stringify(second.body));
      await stack.redis.set(BASELINE_KEY, value);
      out.details.answer_bytes = { product_http_body: Buffer.byteLength(JSON.stringify(second.body)), baseline_value: value.length };

      worker = spawnNode('baseline/redis-worker.js', [], { NATS_URL: stack.nats.url, REDIS_URL: stack.redisDbUrl, KEY: BASELINE_KEY });
      await nextMessage(worker, (m) => m?.ready === true, 10_000, 'baseline worker');
      front = spawnNode('baseline/http-front.js', [], { NATS_URL: stack.nats.url });
      const port = (await nextMessage<{ listening: number }>(front, (m) => typeof m?.listening === 'number', 10_000, 'baseline front')).listening;
      const baseUrl = `http://127.0.0.1:${port}/api/assistant/chat`;
      const check = await postJson(baseUrl, BODY);
      if (check.status !== 200) throw new Error(`baseline answered ${check.status}`);

      const shared = [pidProbe('nats-server', stack.natsPid), redisProbe(() => stack.redis.info('cpu'))];
      const sides: Record<Side, SideRun> = {
        baseline: { url: baseUrl, probes: [pidProbe('http', front.pid), pidProbe('worker', worker.pid), ...shared], c1: [], c50: [] },
        product: { url, probes: [metricsProbe('http', stack.gateway.opsUrl), metricsProbe('worker', stack.orchestrators[0]!.url), ...shared], c1: [], c50: [] },
      };

      const d1 = ctx.secs(6, 2);
      const d50 = ctx.secs(8, 2);
      for (const name of turnOrder(0)) {
        ctx.log(`  warm-up ${name}`);
        await runWrk(ctx.wrk, { url: sides[name].url, body: BODY, connections: 50, durationS: ctx.secs(3, 1) });
      }
      // The product's own timers over the 1-connection runs: where a request's time goes.
      const chatRoute = (labels: string) => labels.includes('chat');
      const orchUrl = stack.orchestrators[0]!.url;
      const readTimers = () =>
        Promise.all([
          histTotals(stack.gateway.opsUrl, 'http_request_duration_seconds', chatRoute),
          histTotals(orchUrl, 'ai_request_latency_seconds'),
          histTotals(orchUrl, 'cache_lookup_latency_seconds'),
        ]);
      for (let r = 0; r < ctx.rounds; r++) {
        for (const name of turnOrder(r)) {
          const s = sides[name];
          ctx.log(`  round ${r + 1}/${ctx.rounds}: ${name} at 1 connection, ${d1} s`);
          const t0 = name === 'product' ? await readTimers() : undefined;
          const w = await runWrk(ctx.wrk, { url: s.url, body: BODY, connections: 1, durationS: d1 });
          if (t0) {
            const t1 = await readTimers();
            s.c1.push({ ...w, timers: { gateway_http: meanMsBetween(t0[0], t1[0]), orchestrator_run: meanMsBetween(t0[1], t1[1]), cache_lookup: meanMsBetween(t0[2], t1[2]) } });
          } else s.c1.push(w);
        }
        for (const name of turnOrder(r)) {
          const s = sides[name];
          ctx.log(`  round ${r + 1}/${ctx.rounds}: ${name} at 50 connections, ${d50} s`);
          s.c50.push(await runWrkWithCpu(ctx.wrk, { url: s.url, body: BODY, connections: 50, durationS: d50 }, s.probes));
        }
        const p = { c1: sides.product.c1[r]!, c50: sides.product.c50[r]! };
        const b = { c1: sides.baseline.c1[r]!, c50: sides.baseline.c50[r]! };
        const cpuRow = (label: string, key: string): Row => ({
          metric: `CPU/req ${label}`,
          unit: 'µs',
          product: p.c50.cpuUsPerReq[key] ?? null,
          baseline: b.c50.cpuUsPerReq[key] ?? null,
        });
        const servers = ['http', 'worker', 'nats-server', 'redis-server'];
        record(
          out,
          r,
          { metric: 'throughput @50 conn', unit: 'req/s', product: p.c50.rps, baseline: b.c50.rps, goal: { kind: 'min_ratio', value: 0.9 } },
          { metric: 'p50 @1 conn', unit: 'ms', product: p.c1.p50, baseline: b.c1.p50, goal: { kind: 'max_ratio', value: 1.2 } },
          { metric: 'p99 @1 conn', unit: 'ms', product: p.c1.p99, baseline: b.c1.p99 },
          { metric: 'p50 @50 conn', unit: 'ms', product: p.c50.p50, baseline: b.c50.p50 },
          { metric: 'p99 @50 conn', unit: 'ms', product: p.c50.p99, baseline: b.c50.p99 },
          { metric: 'mean @1 conn', unit: 'ms', product: p.c1.mean, baseline: b.c1.mean },
          { metric: 'mean @1: gateway HTTP timer', unit: 'ms', product: p.c1.timers?.gateway_http ?? null, baseline: null },
          { metric: 'mean @1: orchestrator run', unit: 'ms', product: p.c1.timers?.orchestrator_run ?? null, baseline: null },
          { metric: 'mean @1: cache lookup (Redis)', unit: 'ms', product: p.c1.timers?.cache_lookup ?? null, baseline: null },
          cpuRow('gateway vs express front', 'http'),
          cpuRow('orchestrator vs redis worker', 'worker'),
          cpuRow('nats-server', 'nats-server'),
          cpuRow('redis-server', 'redis-server'),
          { metric: 'CPU/req all servers', unit: 'µs', product: sum(p.c50.cpuUsPerReq, servers), baseline: sum(b.c50.cpuUsPerReq, servers) },
          cpuRow('wrk (load generator)', 'wrk'),
          { metric: 'errors (non-2xx, socket)', unit: '', product: wrkErrors(p.c1) + wrkErrors(p.c50), baseline: wrkErrors(b.c1) + wrkErrors(b.c50), goal: { kind: 'eq', value: 0 } },
        );
      }
      out.details.rounds = Object.fromEntries(Object.entries(sides).map(([name, s]) => [name, { c1: s.c1, c50: s.c50 }]));
      // Their memory after the load, beside the gateway's and the orchestrator's when the stack stops.
      noteBaselineMemory({ scenario: 'cached', service: 'express front', role: 'gateway' }, front.pid);
      noteBaselineMemory({ scenario: 'cached', service: 'redis worker', role: 'orchestrator' }, worker.pid);
      out.details.cpu_sources = Object.fromEntries(Object.entries(sides).map(([name, s]) => [name, s.probes.map((pr) => `${pr.name}: ${pr.source}`)]));
      out.details.wrk = { threads: 1, duration_s: { c1: d1, c50: d50 }, rounds: ctx.rounds, order: 'product first in odd-numbered rounds (1, 3, ...), baseline first in the others' };
    } finally {
      await Promise.all([front?.stop(), worker?.stop()]);
      await stack.stop();
    }
  },
};

function sum(rec: Record<string, number>, keys: string[]): number {
  return keys.reduce((a, k) => a + (rec[k] ?? Number.NaN), 0);
}
