/**
 * npm run bench [-- --only=cached,stampede] [--rounds=3] [--quick] [--profile=gateway,orchestrator]
 *
 * Starts the real stack (gateway, orchestrator, mock-llm as processes, a nats-server of its own, the machine's
 * Redis) for each scenario, measures the product beside a baseline in the same run, in rounds that take turns
 * (product, baseline; then baseline, product; ...), prints one table of the rounds' medians and ranges and writes
 * bench/results/latest.json with every round's figures. A failing scenario shows its error in the table; the run
 * goes on, and every process it started is stopped at the end.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import type { BenchContext, Scenario, ScenarioOutcome } from './lib/context.js';
import { describeLoad, LoadMeter } from './lib/machine-load.js';
import { killStragglers, ROOT, runCleanups } from './lib/procs.js';
import { redisProbe } from './lib/probes.js';
import { aggregate, legend, machine, machineBusy, renderTable, type ScenarioResult } from './lib/report.js';
import { memoryResult, takeMemoryReadings, type MemoryReading } from './lib/memory.js';
import { REDIS_BASE } from './lib/stack.js';
import { ensureWrk, wrkVersion } from './lib/wrk.js';
import { renderSummary, summarizeProfile } from './profile/summarize.js';
import { cached } from './scenarios/cached.js';
import { jobs } from './scenarios/jobs.js';
import { miss } from './scenarios/miss.js';
import { missThroughput } from './scenarios/miss-throughput.js';
import { scale } from './scenarios/scale.js';
import { stampede } from './scenarios/stampede.js';
import { streaming } from './scenarios/streaming.js';
import { websocket } from './scenarios/websocket.js';

const SCENARIOS: Scenario[] = [cached, streaming, stampede, websocket, miss, missThroughput, scale, jobs];
const FD_LIMIT = 65_536;
/** The issue judges every goal on the median of at least this many rounds. */
const MIN_ROUNDS = 3;
const USAGE =
  'usage: npm run bench -- [--only=cached,streaming,stampede,websocket,miss,miss-throughput,scale,jobs] [--rounds=N (default 3)] [--quick] ' +
  '[--profile=gateway,orchestrator,mock-llm] (profiles: bench/results/profiles/<scenario>/<service>-<section>.cpuprofile) [--out=file]';

interface Options {
  only: string[] | undefined;
  rounds: number;
  quick: boolean;
  profile: string[];
  out: string;
}

function parseArgs(argv: string[]): Options {
  const value = (name: string) => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const list = (v: string | undefined) => v?.split(',').map((s) => s.trim()).filter(Boolean);
  const known = new Set(['only', 'rounds', 'quick', 'profile', 'out', 'help']);
  for (const a of argv) {
    const name = /^--([a-z-]+)/.exec(a)?.[1];
    if (!name || !known.has(name)) throw new Error(`unknown argument ${a}`);
  }
  const only = list(value('only'));
  for (const id of only ?? []) if (!SCENARIOS.some((s) => s.id === id)) throw new Error(`unknown scenario ${id}: one of ${SCENARIOS.map((s) => s.id).join(', ')}`);
  const rounds = Number(value('rounds') ?? MIN_ROUNDS);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 20) throw new Error(`--rounds must be a whole number from 1 to 20, not ${value('rounds')}`);
  return {
    only,
    rounds,
    quick: argv.includes('--quick'),
    profile: list(value('profile')) ?? [],
    // A profiled run's figures are distorted by the profiler: they never replace latest.json unless asked.
    out: value('out') ?? join(ROOT, 'bench', 'results', argv.some((a) => a.startsWith('--profile=')) ? 'profile-run.json' : 'latest.json'),
  };
}

const t0 = performance.now();
/** Seconds since the start on every line: where a run's time goes. */
const log = (msg: string) => process.stdout.write(`[bench +${((performance.now() - t0) / 1000).toFixed(0).padStart(3)}s] ${msg}\n`);

/** Whole-scenario bound: a step that hangs cannot hold the run. */
function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000} s`)), ms);
    }),
  ]);
}

function missingBuilds(): string[] {
  return ['gateway', 'orchestrator', 'mock-llm'].filter((s) => !existsSync(join(ROOT, 'services', s, 'dist', 'main.js'))).map((s) => `services/${s}/dist/main.js`);
}

async function main(): Promise<number> {
  let opts: Options;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error(String(err instanceof Error ? err.message : err));
    console.error(USAGE);
    return 2;
  }
  if (process.argv.includes('--help')) {
    console.log(USAGE);
    return 0;
  }

  let stopping = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log(`${sig}: stopping every process the bench started`);
    void runCleanups(3000).finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', killStragglers);
  process.on('unhandledRejection', (err) => log(`unhandled rejection (ignored): ${String(err)}`));

  const wrk = ensureWrk(log);
  const loadGenerator = `wrk (${await wrkVersion(wrk)}, 1 thread) for REST at a fixed connection count; Node client processes (undici fetch, ws, openai SDK) for streams, bursts and WebSockets`;
  const m = machine(loadGenerator, await machineBusy());
  const busyPct = Math.round(m.busyBeforeRun * 100);
  log(`${m.cores} cores, ${m.cpuModel}, Node ${m.node}, fd limit ${m.fdLimit}, load average ${m.loadAverage}, cores ${busyPct}% busy just before the run, ${opts.rounds} rounds${opts.quick ? ', QUICK run' : ''}`);
  if (busyPct >= 15) log(`warning: the cores were ${busyPct}% busy before the run (other work shares them): figures will move`);
  if (opts.rounds < MIN_ROUNDS) log(`warning: ${opts.rounds} round(s): the goals are meant to be judged on the median of at least ${MIN_ROUNDS}`);

  // Redis's own CPU counter, to tell the machine's other work apart from the Redis the bench drives.
  const redis = new Redis(REDIS_BASE, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false });
  await redis.connect().catch(() => log('warning: Redis did not answer; the scenarios that need it will fail'));
  const redisCpu = redisProbe(() => redis.info('cpu')).read;

  const ctx: BenchContext = {
    quick: opts.quick,
    rounds: opts.rounds,
    profile: opts.profile,
    wrk,
    log,
    secs: (full, quick) => (opts.quick ? quick : full),
    count: (full, quick) => (opts.quick ? quick : full),
  };

  const selected = SCENARIOS.filter((s) => !opts.only || opts.only.includes(s.id));
  const results: ScenarioResult[] = [];
  const memory: MemoryReading[] = [];
  const missing = missingBuilds();
  const started = Date.now();
  const wholeRun = await LoadMeter.begin(redisCpu);
  // Rounds scale each scenario's time; the bound grows with them.
  const boundS = (opts.quick ? 150 : 360) * Math.max(1, opts.rounds / MIN_ROUNDS);
  for (const s of selected) {
    const t0 = Date.now();
    log(`scenario ${s.id}: ${s.title}`);
    const meter = await LoadMeter.begin(redisCpu);
    const out: ScenarioOutcome = { baseline: '', rows: [], details: {} };
    let error: string | undefined;
    try {
      if (missing.length > 0) throw new Error(`not built: ${missing.join(', ')} (npm run build)`);
      await withTimeout(s.run(ctx, out), boundS * 1000, `scenario ${s.id}`);
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
      log(`scenario ${s.id} FAILED: ${error}`);
    }
    // Whatever the scenario left running (after a failure or a timeout) stops before the next one starts.
    await runCleanups();
    // Every process of the scenario has exited and been reaped: its CPU time is in the bench's share now.
    const load = await meter.end();
    memory.push(...takeMemoryReadings());
    const r: ScenarioResult = {
      id: s.id,
      title: s.title,
      baseline: out.baseline,
      rounds: opts.rounds,
      figures: aggregate(out.rows),
      rows: out.rows,
      details: out.details,
      seconds: (Date.now() - t0) / 1000,
      load,
    };
    if (error) r.error = error;
    results.push(r);
    log(`scenario ${s.id} done in ${r.seconds.toFixed(0)} s; meanwhile ${describeLoad(load)}`);
  }
  if (memory.length > 0) results.push(memoryResult(memory));
  const load = await wholeRun.end();
  redis.disconnect();

  const table = renderTable(results);
  // How much outside work each scenario shared the cores with: the first thing to look at when a range is wide.
  const noise = results
    .filter((r) => r.load)
    .map((r) => `${r.id} ${r.load!.otherCores.toFixed(2)}`)
    .join(', ');
  process.stdout.write(`\n${table}\n\n${legend(opts.rounds)}\nOther work on the machine meanwhile (cores, average): ${noise}; whole run ${load.otherCores.toFixed(2)}.\n\n`);
  log(`total ${((Date.now() - started) / 1000).toFixed(0)} s; over the whole run ${describeLoad(load)}`);

  const json = {
    machine: m,
    options: { quick: opts.quick, rounds: opts.rounds, only: opts.only ?? null, profile: opts.profile },
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    seconds: (Date.now() - started) / 1000,
    load,
    how_to_read: legend(opts.rounds),
    scenarios: results,
    table,
  };
  mkdirSync(join(opts.out, '..'), { recursive: true });
  writeFileSync(opts.out, `${JSON.stringify(json, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`);
  log(`figures written to ${opts.out}`);

  if (opts.profile.length > 0) printProfiles(selected.map((s) => s.id), opts.profile);
  return results.some((r) => r.error) ? 1 : 0;
}

function printProfiles(scenarios: string[], services: string[]): void {
  for (const sc of scenarios) {
    const dir = join(ROOT, 'bench', 'results', 'profiles', sc);
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile') && services.some((s) => f.startsWith(s))).sort()) {
      try {
        process.stdout.write(`\n== profile: ${sc} / ${f}\n${renderSummary(summarizeProfile(join(dir, f), 20))}\n`);
      } catch (err) {
        log(`could not read ${f}: ${String(err)}`);
      }
    }
  }
}

// Ten thousand WebSockets need more descriptors than the usual 1024 or 20000: run again under bash with the
// limit raised (every process the bench starts inherits it). Root can raise the hard limit; others get theirs.
if (process.env.BENCH_FD_RAISED !== '1') {
  const child = spawn(
    'bash',
    ['-c', `ulimit -n ${FD_LIMIT} 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"`, process.execPath, ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)],
    { stdio: 'inherit', env: { ...process.env, BENCH_FD_RAISED: '1' } },
  );
  // Ctrl-C reaches the child through the terminal's process group; forwarded signals cover `kill <pid>`.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 130 : 1)));
} else {
  process.exitCode = await main();
  // Handles left by a client library must not keep the bench alive.
  setTimeout(() => process.exit(process.exitCode ?? 0), 1000).unref();
}
