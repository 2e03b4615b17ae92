import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { counterSum } from '@actionedx/testkit';
import type { BenchContext, Scenario, ScenarioOutcome } from '../lib/context.js';
import { ClientProcess, type LoadResult } from '../lib/clients.js';
import { metricsProbe, pidProbe, processFigures, redisProbe, scrapeMetrics, snapshot } from '../lib/probes.js';
import { nextMessage, procCpuSeconds, procRssBytes, spawnNode, type NodeChild } from '../lib/procs.js';
import { startBenchStack, startRelayStack, type BenchStack } from '../lib/stack.js';
import { sleep } from '../lib/stats.js';

const KiB = 1024;
const STREAM_SESSIONS = 200;
const STREAM_TOKENS = 200;
/**
 * Faster than the platform can relay for 200 sessions (200 × 1000 tokens/s), so the product runs flat out while
 * its answers still come in many chunks; as with a real model, tokens that arrive together travel together.
 */
const STREAM_TOKENS_PER_SECOND = 1000;
/** Exchanges recorded from the gateway per client process (reservoir sample) for the bare ws server to replay. */
const RECORDED_EXCHANGES = 200;
/** Relay: chunk frames per answer, one token each, each its own NATS message. */
const RELAY_CHUNKS = 200;
/** Relay: frames the pump may have out that the gateway has not been seen to relay (~40 answers). */
const RELAY_WINDOW_FRAMES = 8000;
/** Relay: frames per job per round of the pump, one nats flush per round. */
const RELAY_BURST = 50;

/**
 * Scenario 4: idle WebSocket capacity of one gateway; 200 sessions streaming at once against bare ws, twice: the
 * gateway's relay alone (fed by a frame pump: the figure with the goal) and end to end (mock-llm and the
 * orchestrator generating the answers on the same cores: informational).
 */
export const websocket: Scenario = {
  id: 'websocket',
  title: 'WebSocket capacity: idle connections on one gateway; 200 sessions streaming: relay alone, and end to end',
  async run(ctx, out) {
    out.baseline = 'a bare ws server in its own process (idle: the same connections; streaming: pushing the same recorded messages)';
    const clients = [await ClientProcess.start(), await ClientProcess.start()];
    try {
      const stack = await startBenchStack({ scenario: 'websocket', orchestrators: 1, profile: ctx.profile, firstSection: 'idle' });
      try {
        await idleCapacity(ctx, out, stack, clients);
        await endToEnd(ctx, out, stack, clients);
      } finally {
        await stack.stop();
      }
      // The relay on its own: the orchestrator and mock-llm are gone, the gateway has the cores.
      await relay(ctx, out, clients);
    } finally {
      await Promise.all(clients.map((c) => c.stop()));
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
  const before = await processFigures(stack.gateway.opsUrl);

  ctx.log(`  opening ${n} idle WebSockets on the gateway`);
  const opened = await openIdle(clients, gwUrl, n);
  // Let the gateway finish its per-connection work (session store, timers), then read its memory.
  let active = Number.NaN;
  for (let i = 0; i < 20; i++) {
    active = counterSum(await scrapeMetrics(stack.gateway.opsUrl), 'websocket_active_connections');
    if (active >= opened.opened) break;
    await sleep(250);
  }
  await sleep(3000);
  const after = await processFigures(stack.gateway.opsUrl);
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

/**
 * 200 WebSocket sessions (split over the client processes), each sending a turn after the previous `response`,
 * for `durationMs` after one warm-up turn each. The clients' clocks start together once every session is open
 * and warm; `read` is called just before and again at the end, so CPU figures cover the measured turns only.
 */
async function sessions<T>(clients: ClientProcess[], url: string, payload: Record<string, unknown>, durationMs: number, record: number, read: () => Promise<T>) {
  const per = STREAM_SESSIONS / clients.length;
  const parts = clients.map((c) =>
    c.loadSynced({ target: { kind: 'ws', url, payload }, concurrency: per, durationMs, maxRequests: 1_000_000, message: 'Stream me a study plan', unique: true, warmup: 1, record }),
  );
  const results = Promise.all(parts.map((p) => p.result));
  await Promise.race([Promise.all(parts.map((p) => p.warm)), results]);
  const before = await read();
  for (const p of parts) p.go();
  const merged = merge(await results);
  const after = await read();
  return { ...merged, before, after };
}

const rate = (x: number, ms: number) => (x * 1000) / ms;
const sessionUrl = (base: string) => `${base}/ws/assistant/{session}?user_id={user}`;

/** End to end: the answers generated by mock-llm through the orchestrator, on the same two cores. */
async function endToEnd(ctx: BenchContext, out: ScenarioOutcome, stack: BenchStack, clients: ClientProcess[]): Promise<void> {
  await stack.mock({ ttft_ms: 0, tokens_per_second: STREAM_TOKENS_PER_SECOND, completion_tokens: STREAM_TOKENS });
  await stack.profileSection('streaming');
  const d = ctx.secs(8, 3) * 1000;

  ctx.log(`  end to end: ${STREAM_SESSIONS} sessions streaming through the gateway (orchestrator, mock-llm), ${d / 1000} s`);
  const probes = [
    metricsProbe('gateway', stack.gateway.opsUrl),
    metricsProbe('orchestrator', stack.orchestrators[0]!.url),
    metricsProbe('mock-llm', stack.mockLlm.url),
    pidProbe('nats-server', stack.natsPid),
    redisProbe(() => stack.redis.info('cpu')),
  ];
  const product = await sessions(clients, sessionUrl(stack.wsUrl), { use_cache: false }, d, RECORDED_EXCHANGES, () => snapshot(probes));
  const { before, after } = product;
  if (product.records.length === 0) throw new Error(`no streamed answer through the gateway: ${product.errorSamples.join('; ')}`);

  const file = join(tmpdir(), `actionedx-bench-ws-records-${process.pid}.json`);
  writeFileSync(file, JSON.stringify(product.records));
  const bare = await startBare(file);
  try {
    ctx.log(`  end to end: ${STREAM_SESSIONS} sessions on a bare ws server pushing the same frames, ${d / 1000} s`);
    const baseline = await sessions(clients, sessionUrl(`ws://127.0.0.1:${bare.port}`), {}, d, 0, async () => procCpu(bare.child));
    const bareCpu = baseline.after - baseline.before;

    const answersP = product.requests - product.errors;
    const answersB = baseline.requests - baseline.errors;
    const e2e = 'end to end, generation on the same cores';
    out.rows.push(
      { metric: `${e2e}: chunks/s, ${STREAM_SESSIONS} sessions`, unit: 'chunks/s', product: rate(product.frames, product.wallMs), baseline: rate(baseline.frames, baseline.wallMs) },
      { metric: `${e2e}: content rate, ${STREAM_SESSIONS} sessions`, unit: 'chars/s', product: rate(product.chars, product.wallMs), baseline: rate(baseline.chars, baseline.wallMs) },
      { metric: `${e2e}: answers/s, ${STREAM_SESSIONS} sessions`, unit: 'answers/s', product: rate(answersP, product.wallMs), baseline: rate(answersB, baseline.wallMs) },
      {
        metric: `${e2e}: CPU per chunk, gateway vs bare ws`,
        unit: 'µs',
        product: ((after.gateway! - before.gateway!) * 1e6) / Math.max(1, product.frames),
        baseline: (bareCpu * 1e6) / Math.max(1, baseline.frames),
      },
      { metric: `${e2e}: stream errors`, unit: '', product: product.errors, baseline: baseline.errors, goal: { kind: 'eq', value: 0 } },
    );
    const cpuMs = (k: string) => ((after[k]! - before[k]!) * 1000) / Math.max(1, answersP);
    out.details.streaming = {
      what: 'end to end: answers generated by mock-llm through one orchestrator, on the same two cores (informational, no goal)',
      sessions: STREAM_SESSIONS,
      completion_tokens: STREAM_TOKENS,
      mock_tokens_per_second_per_stream: STREAM_TOKENS_PER_SECOND,
      recorded_exchanges_replayed: product.records.length,
      duration_s: d / 1000,
      product: { answers: answersP, errors: product.errors, error_samples: product.errorSamples, chunks_per_answer: product.frames / Math.max(1, answersP), chars_per_answer: product.chars / Math.max(1, answersP), wall_ms: product.wallMs, client_cpu_s: product.clientCpuS },
      bare_ws: { answers: answersB, errors: baseline.errors, error_samples: baseline.errorSamples, chunks_per_answer: baseline.frames / Math.max(1, answersB), wall_ms: baseline.wallMs, client_cpu_s: baseline.clientCpuS, server_cpu_ms_per_answer: (bareCpu * 1000) / Math.max(1, answersB) },
      product_cpu_ms_per_answer: Object.fromEntries(Object.keys(after).map((k) => [k, cpuMs(k)])),
    };
  } finally {
    await bare.child.stop();
    rmSync(file, { force: true });
  }
}

interface PumpStats {
  jobs: number;
  frames: number;
  chunks: number;
  heartbeats: number;
  cancelled: number;
  superseded: number;
  rounds: number;
  maxOutstanding: number;
  maxWaiting: number;
  invalid: number;
  validated: number;
  outstanding: number;
  waiting: number;
  active: number;
  cpu_s: number;
}

let statsN = 0;
async function pumpStats(pump: NodeChild): Promise<PumpStats> {
  const id = ++statsN;
  const answer = nextMessage<PumpStats>(pump, (m) => m?.stats === id, 5000, 'frame pump stats');
  pump.send({ stats: id });
  return answer;
}

/**
 * The gateway's relay capacity, apart from generation: nats-server and the gateway only, fed by the frame pump
 * (`bench/src/baseline/frame-pump.ts`: ack, RELAY_CHUNKS one-token chunk frames each in its own NATS message,
 * done), 200 sessions. Baseline: the bare ws server replaying exchanges recorded from the gateway in this run.
 */
async function relay(ctx: BenchContext, out: ScenarioOutcome, clients: ClientProcess[]): Promise<void> {
  const d = ctx.secs(8, 3) * 1000;
  const stack = await startRelayStack({ scenario: 'websocket', profile: ctx.profile, section: 'relay' });
  let pump: NodeChild | undefined;
  let bare: { child: NodeChild; port: number } | undefined;
  const file = join(tmpdir(), `actionedx-bench-ws-relay-records-${process.pid}.json`);
  try {
    pump = spawnNode('baseline/frame-pump.js', [], {
      NATS_URL: stack.nats.url,
      CHUNKS: String(RELAY_CHUNKS),
      WINDOW: String(RELAY_WINDOW_FRAMES),
      BURST: String(RELAY_BURST),
    });
    await nextMessage(pump, (m) => m?.ready === true, 10_000, 'frame pump start');
    const p = pump;

    ctx.log(`  relay: ${STREAM_SESSIONS} sessions through a gateway fed by a frame pump (${RELAY_CHUNKS} one-token chunks per answer), ${d / 1000} s`);
    const probes = [metricsProbe('gateway', stack.gateway.opsUrl), pidProbe('nats-server', stack.natsPid), pidProbe('frame-pump', p.pid)];
    const read = async () => ({ cpu: await snapshot(probes), pump: await pumpStats(p) });
    const product = await sessions(clients, sessionUrl(stack.wsUrl), { use_cache: false }, d, RECORDED_EXCHANGES, read);
    if (product.records.length === 0) throw new Error(`no streamed answer through the gateway: ${product.errorSamples.join('; ')} ${stack.tail().slice(-1000)}`);
    // The baseline has the cores to itself, as the pushing server of the end-to-end part does not quite.
    await p.stop();
    pump = undefined;
    await stack.stop();

    writeFileSync(file, JSON.stringify(product.records));
    bare = await startBare(file);
    const b = bare;
    ctx.log(`  relay: ${STREAM_SESSIONS} sessions on a bare ws server pushing the same messages, ${d / 1000} s`);
    const baseline = await sessions(clients, sessionUrl(`ws://127.0.0.1:${b.port}`), {}, d, 0, async () => procCpu(b.child));
    const bareCpu = baseline.after - baseline.before;

    const { before, after } = product;
    const chunks = Math.max(1, product.frames);
    const answersP = product.requests - product.errors;
    const answersB = baseline.requests - baseline.errors;
    const cpuUs = (k: string) => ((after.cpu[k]! - before.cpu[k]!) * 1e6) / chunks;
    out.rows.push(
      {
        metric: `relay: chunks/s, ${STREAM_SESSIONS} sessions (gateway fed by a frame pump)`,
        unit: 'chunks/s',
        product: rate(product.frames, product.wallMs),
        baseline: rate(baseline.frames, baseline.wallMs),
        goal: { kind: 'min_ratio', value: 0.5 },
      },
      { metric: `relay: answers/s, ${STREAM_SESSIONS} sessions (${RELAY_CHUNKS} chunks each)`, unit: 'answers/s', product: rate(answersP, product.wallMs), baseline: rate(answersB, baseline.wallMs) },
      { metric: 'relay: gateway CPU per chunk', unit: 'µs', product: cpuUs('gateway'), baseline: (bareCpu * 1e6) / Math.max(1, baseline.frames) },
      { metric: 'relay: nats-server + frame pump CPU per chunk', unit: 'µs', product: cpuUs('nats-server') + cpuUs('frame-pump'), baseline: null },
      { metric: 'relay: stream errors', unit: '', product: product.errors, baseline: baseline.errors, goal: { kind: 'eq', value: 0 } },
    );
    const pumpDelta = {
      jobs: after.pump.jobs - before.pump.jobs,
      chunk_frames: after.pump.chunks - before.pump.chunks,
      messages: after.pump.frames - before.pump.frames,
      heartbeats: after.pump.heartbeats - before.pump.heartbeats,
      cancelled: after.pump.cancelled - before.pump.cancelled,
      superseded_attempts: after.pump.superseded - before.pump.superseded,
      max_frames_in_window: after.pump.maxOutstanding,
      max_jobs_waiting_for_window: after.pump.maxWaiting,
      done_frames_checked_against_schema: after.pump.validated,
      done_frames_invalid: after.pump.invalid,
    };
    out.details.relay = {
      what: 'nats-server + gateway only; a frame pump answers each job: ack, one-token chunk frames each in its own NATS message, done',
      sessions: STREAM_SESSIONS,
      chunks_per_answer_sent: RELAY_CHUNKS,
      pump_window_frames: RELAY_WINDOW_FRAMES,
      pump_burst_frames: RELAY_BURST,
      duration_s: d / 1000,
      recorded_exchanges_replayed: product.records.length,
      product: {
        answers: answersP,
        errors: product.errors,
        error_samples: product.errorSamples,
        chunks_per_answer: product.frames / Math.max(1, answersP),
        chars_per_answer: product.chars / Math.max(1, answersP),
        chars_per_s: rate(product.chars, product.wallMs),
        wall_ms: product.wallMs,
        client_cpu_us_per_chunk: (product.clientCpuS * 1e6) / chunks,
      },
      bare_ws: {
        answers: answersB,
        errors: baseline.errors,
        error_samples: baseline.errorSamples,
        chunks_per_answer: baseline.frames / Math.max(1, answersB),
        chars_per_s: rate(baseline.chars, baseline.wallMs),
        wall_ms: baseline.wallMs,
        client_cpu_us_per_chunk: (baseline.clientCpuS * 1e6) / Math.max(1, baseline.frames),
      },
      cpu_us_per_chunk: Object.fromEntries(Object.keys(after.cpu).map((k) => [k, cpuUs(k)])),
      frame_pump: pumpDelta,
      counters_at_start: before,
      counters_at_end: after,
    };
  } finally {
    await pump?.stop();
    await bare?.child.stop();
    await stack.stop();
    rmSync(file, { force: true });
  }
}

const procCpu = (child: NodeChild): number => procCpuSeconds(child.pid);
