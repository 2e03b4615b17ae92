import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { counterSum } from '@actionedx/testkit';
import type { BenchContext, Scenario, ScenarioOutcome } from '../lib/context.js';
import { ClientProcess, type LoadResult } from '../lib/clients.js';
import { metricsProbe, pidProbe, processFigures, redisProbe, scrapeMetrics, snapshot } from '../lib/probes.js';
import { nextMessage, procCpuSeconds, procRssBytes, spawnNode, type NodeChild } from '../lib/procs.js';
import { startBenchStack, type BenchStack } from '../lib/stack.js';
import { sleep } from '../lib/stats.js';
import type { Target } from '../clients/worker.js';

const KiB = 1024;
const STREAM_SESSIONS = 200;
const STREAM_TOKENS = 200;
/**
 * Faster than the platform can relay for 200 sessions (200 × 1000 tokens/s), so the product runs flat out while
 * its answers still come in many chunks; as with a real model, tokens that arrive together travel together.
 */
const STREAM_TOKENS_PER_SECOND = 1000;

/** Scenario 4: idle WebSocket capacity of one gateway, and 200 sessions streaming at once against bare ws. */
export const websocket: Scenario = {
  id: 'websocket',
  title: 'WebSocket capacity: idle connections on one gateway; 200 sessions streaming at once',
  async run(ctx, out) {
    out.baseline = 'a bare ws server in its own process (idle: the same connections; streaming: pushing the same recorded frames)';
    const stack = await startBenchStack({ scenario: 'websocket', orchestrators: 1, profile: ctx.profile, firstSection: 'idle' });
    const clients = [await ClientProcess.start(), await ClientProcess.start()];
    let bare: NodeChild | undefined;
    try {
      await idleCapacity(ctx, out, stack, clients);
      bare = await streamingSessions(ctx, out, stack, clients);
    } finally {
      await Promise.all(clients.map((c) => c.stop()));
      await bare?.stop();
      await stack.stop();
    }
  },
};

async function startBare(records?: string): Promise<{ child: NodeChild; port: number }> {
  const child = spawnNode('baseline/ws-push.js', [], records ? { RECORDS: records } : {});
  const port = (await nextMessage<{ listening: number }>(child, (m) => typeof m?.listening === 'number', 10_000, 'bare ws server')).listening;
  return { child, port };
}

async function openIdle(clients: ClientProcess[], url: string, n: number) {
  const per = Math.ceil(n / clients.length);
  const parts = await Promise.all(clients.map((c, i) => c.idleOpen({ url, n: Math.min(per, n - i * per), parallel: 64 })));
  return {
    opened: parts.reduce((a, p) => a + p.opened, 0),
    failed: parts.reduce((a, p) => a + p.failed, 0),
    errors: parts.flatMap((p) => p.errors).slice(0, 5),
    ms: Math.max(...parts.map((p) => p.ms)),
  };
}

async function idleCapacity(ctx: BenchContext, out: ScenarioOutcome, stack: BenchStack, clients: ClientProcess[]): Promise<void> {
  const n = ctx.count(10_000, 2_000);
  const gwUrl = `${stack.wsUrl}/ws/assistant/idle-{i}?user_id=idle-{i}`;

  // Warm the gateway's WebSocket path (code compiled, pools sized) before taking the "before" figure.
  const warm = await openIdle(clients, gwUrl, 200);
  if (warm.opened === 0) throw new Error(`no WebSocket connection to the gateway opened: ${warm.errors.join('; ')}`);
  await Promise.all(clients.map((c) => c.idleClose()));
  await sleep(2000);
  const before = await processFigures(stack.gateway.url);

  ctx.log(`  opening ${n} idle WebSockets on the gateway`);
  const opened = await openIdle(clients, gwUrl, n);
  // Let the gateway finish its per-connection work (session store, timers), then read its memory.
  let active = Number.NaN;
  for (let i = 0; i < 20; i++) {
    active = counterSum(await scrapeMetrics(stack.gateway.url), 'websocket_active_connections');
    if (active >= opened.opened) break;
    await sleep(250);
  }
  await sleep(3000);
  const after = await processFigures(stack.gateway.url);
  await Promise.all(clients.map((c) => c.idleClose()));

  // The same connections on a bare ws server.
  ctx.log(`  opening ${n} idle WebSockets on a bare ws server`);
  const bare = await startBare();
  let bareOpened;
  let bareBefore;
  let bareAfter;
  try {
    const bareUrl = `ws://127.0.0.1:${bare.port}/ws/assistant/idle-{i}?user_id=idle-{i}`;
    await openIdle(clients, bareUrl, 200);
    await Promise.all(clients.map((c) => c.idleClose()));
    await sleep(2000);
    bareBefore = procRssBytes(bare.child.pid);
    bareOpened = await openIdle(clients, bareUrl, n);
    await sleep(3000);
    bareAfter = procRssBytes(bare.child.pid);
    await Promise.all(clients.map((c) => c.idleClose()));
  } finally {
    await bare.child.stop();
  }

  const perConn = (a: number, b: number, count: number) => (count > 0 ? (a - b) / count / KiB : Number.NaN);
  out.rows.push(
    { metric: 'idle WebSockets held', unit: 'conns', product: opened.opened, baseline: bareOpened.opened, goal: { kind: 'eq', value: n } },
    {
      metric: 'gateway RSS per idle WebSocket',
      unit: 'KiB',
      product: perConn(after.rssBytes, before.rssBytes, opened.opened),
      baseline: perConn(bareAfter, bareBefore, bareOpened.opened),
      goal: { kind: 'max', value: 20 },
    },
    {
      metric: 'gateway JS heap per idle WebSocket',
      unit: 'KiB',
      product: perConn(after.heapUsedBytes, before.heapUsedBytes, opened.opened),
      baseline: null,
    },
  );
  out.details.idle = {
    target: n,
    gateway: { opened: opened.opened, failed: opened.failed, errors: opened.errors, open_ms: opened.ms, active_metric: active, rss_before: before.rssBytes, rss_after: after.rssBytes, heap_before: before.heapUsedBytes, heap_after: after.heapUsedBytes },
    bare_ws: { opened: bareOpened.opened, failed: bareOpened.failed, errors: bareOpened.errors, rss_before: bareBefore, rss_after: bareAfter },
  };
}

function merge(parts: LoadResult[]) {
  return {
    requests: parts.reduce((a, p) => a + p.requests, 0),
    errors: parts.reduce((a, p) => a + p.errors, 0),
    errorSamples: parts.flatMap((p) => p.errorSamples).slice(0, 5),
    chars: parts.reduce((a, p) => a + p.chars, 0),
    frames: parts.reduce((a, p) => a + p.frames, 0),
    wallMs: Math.max(...parts.map((p) => p.wallMs)),
    records: parts.flatMap((p) => p.records),
    clientCpuS: parts.reduce((a, p) => a + p.cpuS, 0),
  };
}

async function streamingSessions(ctx: BenchContext, out: ScenarioOutcome, stack: BenchStack, clients: ClientProcess[]): Promise<NodeChild> {
  await stack.mock({ ttft_ms: 0, tokens_per_second: STREAM_TOKENS_PER_SECOND, completion_tokens: STREAM_TOKENS });
  await stack.profileSection('streaming');
  const d = ctx.secs(8, 3) * 1000;
  const per = STREAM_SESSIONS / clients.length;
  const run = (target: Target, record: number) =>
    Promise.all(
      clients.map((c) =>
        c.load({ target, concurrency: per, durationMs: d, maxRequests: 1_000_000, message: 'Stream me a study plan', unique: true, warmup: 1, record }),
      ),
    ).then(merge);

  ctx.log(`  ${STREAM_SESSIONS} sessions streaming through the gateway, ${d / 1000} s`);
  const probes = [
    metricsProbe('gateway', stack.gateway.url),
    metricsProbe('orchestrator', stack.orchestrators[0]!.url),
    metricsProbe('mock-llm', stack.mockLlm.url),
    pidProbe('nats-server', stack.natsPid),
    redisProbe(() => stack.redis.info('cpu')),
  ];
  const before = await snapshot(probes);
  const product = await run({ kind: 'ws', url: `${stack.wsUrl}/ws/assistant/{session}?user_id={user}`, payload: { use_cache: false } }, 200);
  const after = await snapshot(probes);
  if (product.records.length === 0) throw new Error(`no streamed answer through the gateway: ${product.errorSamples.join('; ')}`);

  const file = join(tmpdir(), `actionedx-bench-ws-records-${process.pid}.json`);
  writeFileSync(file, JSON.stringify(product.records));
  const bare = await startBare(file);
  ctx.log(`  ${STREAM_SESSIONS} sessions on a bare ws server pushing the same frames, ${d / 1000} s`);
  const bareBefore = procCpu(bare.child);
  const baseline = await run({ kind: 'ws', url: `ws://127.0.0.1:${bare.port}/ws/assistant/{session}?user_id={user}`, payload: {} }, 0);
  const bareCpu = procCpu(bare.child) - bareBefore;

  const rate = (x: number, ms: number) => (x * 1000) / ms;
  const answersP = product.requests - product.errors;
  const answersB = baseline.requests - baseline.errors;
  out.rows.push(
    { metric: `chunks/s relayed, ${STREAM_SESSIONS} sessions`, unit: 'chunks/s', product: rate(product.frames, product.wallMs), baseline: rate(baseline.frames, baseline.wallMs), goal: { kind: 'min_ratio', value: 0.5 } },
    { metric: `content rate, ${STREAM_SESSIONS} sessions`, unit: 'chars/s', product: rate(product.chars, product.wallMs), baseline: rate(baseline.chars, baseline.wallMs) },
    { metric: `answers/s, ${STREAM_SESSIONS} sessions`, unit: 'answers/s', product: rate(answersP, product.wallMs), baseline: rate(answersB, baseline.wallMs) },
    {
      metric: 'CPU per chunk: gateway vs bare ws server',
      unit: 'µs',
      product: ((after.gateway! - before.gateway!) * 1e6) / Math.max(1, product.frames),
      baseline: (bareCpu * 1e6) / Math.max(1, baseline.frames),
    },
    { metric: 'stream errors', unit: '', product: product.errors, baseline: baseline.errors, goal: { kind: 'eq', value: 0 } },
  );
  const cpuMs = (k: string) => ((after[k]! - before[k]!) * 1000) / Math.max(1, answersP);
  out.details.streaming = {
    sessions: STREAM_SESSIONS,
    completion_tokens: STREAM_TOKENS,
    mock_tokens_per_second_per_stream: STREAM_TOKENS_PER_SECOND,
    recorded_exchanges_replayed: product.records.length,
    duration_s: d / 1000,
    product: { answers: answersP, errors: product.errors, error_samples: product.errorSamples, chunks_per_answer: product.frames / Math.max(1, answersP), chars_per_answer: product.chars / Math.max(1, answersP), client_cpu_s: product.clientCpuS },
    bare_ws: { answers: answersB, errors: baseline.errors, error_samples: baseline.errorSamples, chunks_per_answer: baseline.frames / Math.max(1, answersB), client_cpu_s: baseline.clientCpuS, server_cpu_ms_per_answer: (bareCpu * 1000) / Math.max(1, answersB) },
    product_cpu_ms_per_answer: Object.fromEntries(Object.keys(after).map((k) => [k, cpuMs(k)])),
  };
  return bare.child;
}

const procCpu = (child: NodeChild): number => procCpuSeconds(child.pid);
