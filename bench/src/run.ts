/**
 * npm run bench [-- --only=cached,stampede] [--quick] [--profile=gateway,orchestrator]
 *
 * Starts the real stack (gateway, orchestrator, mock-llm as processes, a nats-server of its own, the machine's
 * Redis) for each scenario of issue 5, measures the product beside a baseline in the same run, prints one table
 * and writes bench/results/latest.json. A failing scenario shows its error in the table; the run goes on, and
 * every process it started is stopped at the end.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchContext, Scenario, ScenarioOutcome } from './lib/context.js';
import { killStragglers, ROOT, runCleanups } from './lib/procs.js';
import { machine, machineBusy, metOf, renderTable, ratioOf, type ScenarioResult } from './lib/report.js';
import { ensureWrk, wrkVersion } from './lib/wrk.js';
import { renderSummary, summarizeProfile } from './profile/summarize.js';
import { cached } from './scenarios/cached.js';
import { miss } from './scenarios/miss.js';
import { scale } from './scenarios/scale.js';
import { stampede } from './scenarios/stampede.js';
import { streaming } from './scenarios/streaming.js';
import { websocket } from './scenarios/websocket.js';

const SCENARIOS: Scenario[] = [cached, streaming, stampede, websocket, miss, scale];
const FD_LIMIT = 65_536;

interface Options {
  only: string[] | undefined;
  quick: boolean;
  profile: string[];
  out: string;
}

function parseArgs(argv: string[]): Options {
  const value = (name: string) => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const list = (v: string | undefined) => v?.split(',').map((s) => s.trim()).filter(Boolean);
  const known = new Set(['only', 'quick', 'profile', 'out', 'help']);
  for (const a of argv) {
    const name = /^--([a-z-]+)/.exec(a)?.[1];
    if (!name || !known.has(name)) throw new Error(`unknown argument ${a}`);
  }
  const only = list(value('only'));
  for (const id of only ?? []) if (!SCENARIOS.some((s) => s.id === id)) throw new Error(`unknown scenario ${id}: one of ${SCENARIOS.map((s) => s.id).join(', ')}`);
  return {
    only,
    quick: argv.includes('--quick'),
    profile: list(value('profile')) ?? [],
    // A profiled run's figures are distorted by the profiler: they never replace latest.json unless asked.
    out: value('out') ?? join(ROOT, 'bench', 'results', argv.some((a) => a.startsWith('--profile=')) ? 'profile-run.json' : 'latest.json'),
  };
}

const log = (msg: string) => process.stdout.write(`[bench] ${msg}\n`);

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
    console.error('usage: npm run bench -- [--only=cached,streaming,stampede,websocket,miss] [--quick] [--profile=gateway,orchestrator,mock-llm] (profiles: bench/results/profiles/<scenario>/<service>.cpuprofile) [--out=file]');
    return 2;
  }
  if (process.argv.includes('--help')) {
    console.log('usage: npm run bench -- [--only=cached,streaming,stampede,websocket,miss] [--quick] [--profile=gateway,orchestrator,mock-llm] [--out=file]');
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
  log(`${m.cores} cores, ${m.cpuModel}, Node ${m.node}, fd limit ${m.fdLimit}, load average ${m.loadAverage}${opts.quick ? ', QUICK run' : ''}`);
  const busyPct = Math.round(m.busyBeforeRun * 100);
  if (busyPct >= 15) log(`warning: the cores were ${busyPct}% busy before the run (other work shares them): figures will move`);

  const ctx: BenchContext = {
    quick: opts.quick,
    profile: opts.profile,
    wrk,
    log,
    secs: (full, quick) => (opts.quick ? quick : full),
    count: (full, quick) => (opts.quick ? quick : full),
  };

  const selected = SCENARIOS.filter((s) => !opts.only || opts.only.includes(s.id));
  const results: ScenarioResult[] = [];
  const missing = missingBuilds();
  const started = Date.now();
  for (const s of selected) {
    const t0 = Date.now();
    log(`scenario ${s.id}: ${s.title}`);
    const out: ScenarioOutcome = { baseline: '', rows: [], details: {} };
    let error: string | undefined;
    try {
      if (missing.length > 0) throw new Error(`not built: ${missing.join(', ')} (npm run build)`);
      await withTimeout(s.run(ctx, out), (opts.quick ? 150 : 360) * 1000, `scenario ${s.id}`);
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
      log(`scenario ${s.id} FAILED: ${error}`);
    }
    // Whatever the scenario left running (after a failure or a timeout) stops before the next one starts.
    await runCleanups();
    const r: ScenarioResult = { id: s.id, title: s.title, baseline: out.baseline, rows: out.rows, details: out.details, seconds: (Date.now() - t0) / 1000 };
    if (error) r.error = error;
    results.push(r);
    log(`scenario ${s.id} done in ${r.seconds.toFixed(0)} s`);
  }

  const table = renderTable(results);
  process.stdout.write(`\n${table}\n\n`);
  log(`total ${((Date.now() - started) / 1000).toFixed(0)} s`);

  const json = {
    machine: m,
    options: { quick: opts.quick, only: opts.only ?? null, profile: opts.profile },
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    scenarios: results.map((r) => ({
      ...r,
      rows: r.rows.map((row) => ({ ...row, ratio: ratioOf(row), met: metOf(row) })),
    })),
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
