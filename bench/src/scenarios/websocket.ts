import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { counterSum } from '@actionedx/testkit';
import { record, turnOrder, type BenchContext, type Scenario, type ScenarioOutcome, type Side } from '../lib/context.js';
import { ClientProcess, type LoadResult } from '../lib/clients.js';
import { metricsProbe, pidProbe, processFigures, redisProbe, scrapeMetrics, snapshot, type CpuSnapshot } from '../lib/probes.js';
import { noteBaselineMemory, noteServiceMemory } from '../lib/memory.js';
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

  // Warm each server's WebSocket path (code compiled, pools sized) before the first "before" figure.
  const warm = await openIdle(clients, gwUrl, 200);
  if (warm.opened === 0) throw new Error(`no WebSocket connection to the gateway opened: ${warm.errors.join('; ')}`);
  await Promise.all(clients.map((c) => c.idleClose()));
  // The bare server stays up through the rounds (idle, it costs nothing); only memory is measured here.
  const bare = await startBare();
  const bareUrl = `ws://127.0.0.1:${bare.port}/ws/assistant/idle-{i}?user_id=idle-{i}`;
  const perConn = (a: number, b: number, count: number) => (count > 0 ? (a - b) / count / KiB : Number.NaN);
  const rounds: Array<Record<string, unknown>> = [];
  let first: { product: { rss: number; heap: number }; baseline: { rss: number; heap: number } } | undefined;
  try {
    await openIdle(clients, bareUrl, 200);
    await Promise.all(clients.map((c) => c.idleClose()));

    /** n idle connections on one server: its memory 2 s after the previous connections closed, and 3 s after these opened (1 and 1 with --quick). */
    const measure = async (url: string, memory: () => Promise<{ rss: number; heap: number }>, settle: () => Promise<void>) => {
      await sleep(ctx.secs(2, 1) * 1000);
      const before = await memory();
      const opened = await openIdle(clients, url, n);
      await settle();
      await sleep(ctx.secs(3, 1) * 1000);
      const after = await memory();
      await Promise.all(clients.map((c) => c.idleClose()));
      return { ...opened, before, after };
    };
    const gatewayMemory = async () => {
      const f = await processFigures(stack.gateway.opsUrl);
      return { rss: f.rssBytes, heap: f.heapUsedBytes };
    };
    // The gateway does per-connection work (session store, timers) after the open: wait until it counts them all.
    const gatewaySettle = async () => {
      for (let i = 0; i < 20; i++) {
        if (counterSum(await scrapeMetrics(stack.gateway.opsUrl), 'websocket_active_connections') >= n) return;
        await sleep(250);
      }
    };
    const bareMemory = async () => ({ rss: procRssBytes(bare.child.pid), heap: Number.NaN });
    for (let r = 0; r < ctx.rounds; r++) {
      const res: Partial<Record<Side, Awaited<ReturnType<typeof measure>>>> = {};
      for (const side of turnOrder(r)) {
        ctx.log(`  round ${r + 1}/${ctx.rounds}: ${n} idle WebSockets on ${side === 'product' ? 'the gateway' : 'a bare ws server'}`);
        res[side] = side === 'product' ? await measure(gwUrl, gatewayMemory, gatewaySettle) : await measure(bareUrl, bareMemory, async () => {});
      }
      const p = res.product!;
      const b = res.baseline!;
      first ??= { product: p.before, baseline: b.before };
      // Against the memory before the first round: a process that has held n connections keeps much of that
      // memory after they close (its "before" of a later round is anywhere between), so the footprint of n
      // connections is measured from the fresh process, in every round alike; growth from round to round shows.
      record(
        out,
        r,
        { metric: 'idle WebSockets held', unit: 'conns', product: p.opened, baseline: b.opened, goal: { kind: 'eq', value: n } },
        {
          metric: 'gateway RSS per idle WebSocket (from before round 1)',
          unit: 'KiB',
          product: perConn(p.after.rss, first.product.rss, p.opened),
          baseline: perConn(b.after.rss, first.baseline.rss, b.opened),
          goal: { kind: 'max', value: 20 },
        },
        { metric: 'gateway JS heap per idle WebSocket (from before round 1)', unit: 'KiB', product: perConn(p.after.heap, first.product.heap, p.opened), baseline: null },
      );
      rounds.push({ gateway: p, bare_ws: b });
    }
    // Both servers' memory once the idle rounds are over (all connections closed): what holding them left behind.
    await sleep(ctx.secs(2, 1) * 1000);
    await noteServiceMemory({ scenario: 'websocket', service: 'gateway', role: 'gateway', phase: 'end', stage: 'after the idle rounds' }, stack.gateway.opsUrl);
    noteBaselineMemory({ scenario: 'websocket', service: 'bare ws server', role: 'gateway', stage: 'after the idle rounds' }, bare.child.pid);
  } finally {
    await bare.child.stop();
  }
  out.details.idle = { target: n, rounds };
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
  const d = ctx.secs(5, 2) * 1000;
  const probes = [
    metricsProbe('gateway', stack.gateway.opsUrl),
    metricsProbe('orchestrator', stack.orchestrators[0]!.url),
    metricsProbe('mock-llm', stack.mockLlm.url),
    pidProbe('nats-server', stack.natsPid),
    redisProbe(() => stack.redis.info('cpu')),
  ];
  const file = join(tmpdir(), `actionedx-bench-ws-records-${process.pid}.json`);
  // Started once the first product run has recorded what it is to replay; idle while the product runs.
  let bare: { child: NodeChild; port: number } | undefined;
  let recorded = 0;
  const rounds: Array<Record<string, unknown>> = [];
  const e2e = 'end to end, generation on the same cores';
  try {
    for (let r = 0; r < ctx.rounds; r++) {
      let product: Awaited<ReturnType<typeof sessions<CpuSnapshot>>> | undefined;
      let baseline: Awaited<ReturnType<typeof sessions<number>>> | undefined;
      for (const side of turnOrder(r)) {
        if (side === 'product') {
          ctx.log(`  round ${r + 1}/${ctx.rounds}: end to end, ${STREAM_SESSIONS} sessions streaming through the gateway (orchestrator, mock-llm), ${d / 1000} s`);
          product = await sessions(clients, sessionUrl(stack.wsUrl), { use_cache: false }, d, r === 0 ? RECORDED_EXCHANGES : 0, () => snapshot(probes));
          if (r === 0) {
            if (product.records.length === 0) throw new Error(`no streamed answer through the gateway: ${product.errorSamples.join('; ')}`);
            writeFileSync(file, JSON.stringify(product.records));
            recorded = product.records.length;
            bare = await startBare(file);
          }
        } else {
          const b = bare;
          if (!b) throw new Error('the bare ws server needs the first round to start with the product');
          ctx.log(`  round ${r + 1}/${ctx.rounds}: end to end, ${STREAM_SESSIONS} sessions on a bare ws server pushing the same frames, ${d / 1000} s`);
          baseline = await sessions(clients, sessionUrl(`ws://127.0.0.1:${b.port}`), {}, d, 0, async () => procCpu(b.child));
        }
      }
      const p = product!;
      const b = baseline!;
      const bareCpu = b.after - b.before;
      const answersP = p.requests - p.errors;
      const answersB = b.requests - b.errors;
      record(
        out,
        r,
        { metric: `${e2e}: chunks/s, ${STREAM_SESSIONS} sessions`, unit: 'chunks/s', product: rate(p.frames, p.wallMs), baseline: rate(b.frames, b.wallMs) },
        { metric: `${e2e}: content rate, ${STREAM_SESSIONS} sessions`, unit: 'chars/s', product: rate(p.chars, p.wallMs), baseline: rate(b.chars, b.wallMs) },
        { metric: `${e2e}: answers/s, ${STREAM_SESSIONS} sessions`, unit: 'answers/s', product: rate(answersP, p.wallMs), baseline: rate(answersB, b.wallMs) },
        {
          metric: `${e2e}: CPU per chunk, gateway vs bare ws`,
          unit: 'µs',
          product: ((p.after.gateway! - p.before.gateway!) * 1e6) / Math.max(1, p.frames),
          baseline: (bareCpu * 1e6) / Math.max(1, b.frames),
        },
        { metric: `${e2e}: stream errors`, unit: '', product: p.errors, baseline: b.errors, goal: { kind: 'eq', value: 0 } },
      );
      const cpuMs = (k: string) => ((p.after[k]! - p.before[k]!) * 1000) / Math.max(1, answersP);
      rounds.push({
        product: { answers: answersP, errors: p.errors, error_samples: p.errorSamples, chunks_per_answer: p.frames / Math.max(1, answersP), chars_per_answer: p.chars / Math.max(1, answersP), wall_ms: p.wallMs, client_cpu_s: p.clientCpuS },
        bare_ws: { answers: answersB, errors: b.errors, error_samples: b.errorSamples, chunks_per_answer: b.frames / Math.max(1, answersB), wall_ms: b.wallMs, client_cpu_s: b.clientCpuS, server_cpu_ms_per_answer: (bareCpu * 1000) / Math.max(1, answersB) },
        product_cpu_ms_per_answer: Object.fromEntries(Object.keys(p.after).map((k) => [k, cpuMs(k)])),
      });
    }
    out.details.streaming = {
      what: 'end to end: answers generated by mock-llm through one orchestrator, on the same two cores (informational, no goal)',
      sessions: STREAM_SESSIONS,
      completion_tokens: STREAM_TOKENS,
      mock_tokens_per_second_per_stream: STREAM_TOKENS_PER_SECOND,
      recorded_exchanges_replayed: recorded,
      duration_s: d / 1000,
      rounds,
    };
  } finally {
    await bare?.child.stop();
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
 * done), 200 sessions. Baseline: the bare ws server replaying exchanges recorded from the gateway in the first
 * round. Both stay up through the rounds and take turns; the one not measured is idle (the gateway's and the
 * pump's timers cost well under 1 % of a core).
 */
async function relay(ctx: BenchContext, out: ScenarioOutcome, clients: ClientProcess[]): Promise<void> {
  const d = ctx.secs(6, 2) * 1000;
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
    const pumpProc = pump;
    const probes = [metricsProbe('gateway', stack.gateway.opsUrl), pidProbe('nats-server', stack.natsPid), pidProbe('frame-pump', pumpProc.pid)];
    const read = async () => ({ cpu: await snapshot(probes), pump: await pumpStats(pumpProc) });
    let recorded = 0;
    const rounds: Array<Record<string, unknown>> = [];
    for (let r = 0; r < ctx.rounds; r++) {
      let product: Awaited<ReturnType<typeof sessions<Awaited<ReturnType<typeof read>>>>> | undefined;
      let baseline: Awaited<ReturnType<typeof sessions<number>>> | undefined;
      for (const side of turnOrder(r)) {
        if (side === 'product') {
          ctx.log(`  round ${r + 1}/${ctx.rounds}: relay, ${STREAM_SESSIONS} sessions through a gateway fed by a frame pump (${RELAY_CHUNKS} one-token chunks per answer), ${d / 1000} s`);
          product = await sessions(clients, sessionUrl(stack.wsUrl), { use_cache: false }, d, r === 0 ? RECORDED_EXCHANGES : 0, read);
          if (r === 0) {
            if (product.records.length === 0) throw new Error(`no streamed answer through the gateway: ${product.errorSamples.join('; ')} ${stack.tail().slice(-1000)}`);
            writeFileSync(file, JSON.stringify(product.records));
            recorded = product.records.length;
            bare = await startBare(file);
          }
        } else {
          const b = bare;
          if (!b) throw new Error('the bare ws server needs the first round to start with the product');
          ctx.log(`  round ${r + 1}/${ctx.rounds}: relay, ${STREAM_SESSIONS} sessions on a bare ws server pushing the same messages, ${d / 1000} s`);
          baseline = await sessions(clients, sessionUrl(`ws://127.0.0.1:${b.port}`), {}, d, 0, async () => procCpu(b.child));
        }
      }
      const p = product!;
      const b = baseline!;
      const bareCpu = b.after - b.before;
      const { before, after } = p;
      const chunks = Math.max(1, p.frames);
      const answersP = p.requests - p.errors;
      const answersB = b.requests - b.errors;
      const cpuUs = (k: string) => ((after.cpu[k]! - before.cpu[k]!) * 1e6) / chunks;
      record(
        out,
        r,
        {
          metric: `relay: chunks/s, ${STREAM_SESSIONS} sessions (gateway fed by a frame pump)`,
          unit: 'chunks/s',
          product: rate(p.frames, p.wallMs),
          baseline: rate(b.frames, b.wallMs),
          goal: { kind: 'min_ratio', value: 0.5 },
        },
        { metric: `relay: answers/s, ${STREAM_SESSIONS} sessions (${RELAY_CHUNKS} chunks each)`, unit: 'answers/s', product: rate(answersP, p.wallMs), baseline: rate(answersB, b.wallMs) },
        { metric: 'relay: gateway CPU per chunk', unit: 'µs', product: cpuUs('gateway'), baseline: (bareCpu * 1e6) / Math.max(1, b.frames) },
        { metric: 'relay: nats-server + frame pump CPU per chunk', unit: 'µs', product: cpuUs('nats-server') + cpuUs('frame-pump'), baseline: null },
        { metric: 'relay: stream errors', unit: '', product: p.errors, baseline: b.errors, goal: { kind: 'eq', value: 0 } },
      );
      rounds.push({
        product: {
          answers: answersP,
          errors: p.errors,
          error_samples: p.errorSamples,
          chunks_per_answer: p.frames / Math.max(1, answersP),
          chars_per_answer: p.chars / Math.max(1, answersP),
          chars_per_s: rate(p.chars, p.wallMs),
          wall_ms: p.wallMs,
          client_cpu_us_per_chunk: (p.clientCpuS * 1e6) / chunks,
        },
        bare_ws: {
          answers: answersB,
          errors: b.errors,
          error_samples: b.errorSamples,
          chunks_per_answer: b.frames / Math.max(1, answersB),
          chars_per_s: rate(b.chars, b.wallMs),
          wall_ms: b.wallMs,
          client_cpu_us_per_chunk: (b.clientCpuS * 1e6) / Math.max(1, b.frames),
        },
        cpu_us_per_chunk: Object.fromEntries(Object.keys(after.cpu).map((k) => [k, cpuUs(k)])),
        frame_pump: {
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
        },
        counters_at_start: before,
        counters_at_end: after,
      });
    }
    out.details.relay = {
      what: 'nats-server + gateway only; a frame pump answers each job: ack, one-token chunk frames each in its own NATS message, done',
      sessions: STREAM_SESSIONS,
      chunks_per_answer_sent: RELAY_CHUNKS,
      pump_window_frames: RELAY_WINDOW_FRAMES,
      pump_burst_frames: RELAY_BURST,
      duration_s: d / 1000,
      recorded_exchanges_replayed: recorded,
      rounds,
    };
  } finally {
    await pump?.stop();
    await bare?.child.stop();
    await stack.stop();
    rmSync(file, { force: true });
  }
}

const procCpu = (child: NodeChild): number => procCpuSeconds(child.pid);
