import { execFile, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuPerRequestUs, snapshot, type CpuProbe } from './probes.js';
import { trackPid } from './procs.js';

/** wrk (Debian package `wrk`): C, one epoll loop per thread, a few µs of CPU per request. */
export function wrkPath(): string | undefined {
  for (const p of ['/usr/bin/wrk', '/usr/local/bin/wrk']) {
    if (spawnSync(p, ['-v']).error === undefined) return p;
  }
  return undefined;
}

/** Installs wrk with apt-get when it is missing (the bench runs as root here); throws when that fails. */
export function ensureWrk(log: (s: string) => void): string {
  const found = wrkPath();
  if (found) return found;
  log('wrk is missing: apt-get install -y wrk');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync('apt-get', ['install', '-y', '-qq', 'wrk'], { env, stdio: 'ignore' });
  if (r.status !== 0) {
    spawnSync('apt-get', ['update', '-qq'], { env, stdio: 'ignore' });
    r = spawnSync('apt-get', ['install', '-y', '-qq', 'wrk'], { env, stdio: 'ignore' });
  }
  const installed = wrkPath();
  if (!installed) throw new Error('wrk is not installed and apt-get could not install it (try: apt-get install wrk)');
  return installed;
}

export interface WrkResult {
  connections: number;
  requests: number;
  durationS: number;
  rps: number;
  /** Latencies in milliseconds. */
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  /** CPU seconds wrk itself used (bash `times`). */
  cpuS: number;
}

const scriptDir = mkdtempSync(join(tmpdir(), 'actionedx-bench-'));
let scriptN = 0;

/** Where the per-request number goes in a unique body (split out of the JSON, so it never needs escaping). */
const MARK = '@@BENCH_N@@';

function luaScript(opts: WrkOptions): string {
  const path = join(scriptDir, `post-${scriptN++}.lua`);
  const hdrs = Object.entries(opts.headers ?? {})
    .map(([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`)
    .join('\n');
  let body: string;
  if (opts.unique) {
    // A `request` function makes every body different (a tag of the run and a counter after the message), so
    // nothing downstream can answer it from a cache; it costs wrk a Lua string concatenation per request.
    const b = opts.body as { message?: unknown };
    if (typeof b.message !== 'string') throw new Error('a unique wrk body needs a string `message`');
    const [prefix, suffix] = JSON.stringify({ ...b, message: `${b.message} #${opts.unique}-${MARK}` }).split(MARK) as [string, string];
    body = `local prefix = [==[${prefix}]==]
local suffix = [==[${suffix}]==]
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, prefix .. n .. suffix)
end`;
  } else body = `wrk.body = [==[${JSON.stringify(opts.body)}]==]`;
  writeFileSync(
    path,
    `wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
${hdrs}
${body}
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('\\nBENCH_JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.2f}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
`,
  );
  return path;
}

export interface WrkOptions {
  url: string;
  body: unknown;
  connections: number;
  durationS: number;
  threads?: number;
  headers?: Record<string, string>;
  /**
   * Make every request's `message` unique: the body's message gets ` #<this tag>-<n>` appended, n counting
   * from 1 in this run (one wrk thread). The tag must differ between runs that must not share messages.
   */
  unique?: string;
}

/** One wrk run of POSTs with a JSON body; latencies from wrk's own histogram. */
export function runWrk(wrk: string, opts: WrkOptions): Promise<WrkResult> {
  const script = luaScript(opts);
  const args = [
    `-t${opts.threads ?? 1}`,
    `-c${opts.connections}`,
    `-d${opts.durationS}s`,
    '--timeout',
    '5s',
    '-s',
    script,
    opts.url,
  ];
  return new Promise((resolve, reject) => {
    // `times` after wrk prints the CPU its children (wrk) used: exact, unlike sampling /proc.
    const proc = spawn('bash', ['-c', '"$0" "$@"; rc=$?; times >&2; exit $rc', wrk, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    trackPid(proc.pid);
    let out = '';
    let err = '';
    proc.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const killer = setTimeout(() => proc.kill('SIGKILL'), (opts.durationS + 20) * 1000);
    proc.once('exit', (code) => {
      clearTimeout(killer);
      const m = /BENCH_JSON (\{.*\})/.exec(out);
      if (code !== 0 || !m) return reject(new Error(`wrk failed (${code}): ${err.slice(-500)} ${out.slice(-500)}`));
      const j = JSON.parse(m[1]!) as Record<string, number>;
      const lines = err.trim().split('\n');
      const children = (lines[lines.length - 1] ?? '').trim().split(/\s+/);
      const secs = (s: string | undefined) => {
        const t = /^(\d+)m([0-9.]+)s$/.exec(s ?? '');
        return t ? Number(t[1]) * 60 + Number(t[2]) : Number.NaN;
      };
      const durationS = j.duration_us! / 1e6;
      resolve({
        connections: opts.connections,
        requests: j.requests!,
        durationS,
        rps: j.requests! / durationS,
        p50: j.p50! / 1000,
        p90: j.p90! / 1000,
        p99: j.p99! / 1000,
        max: j.max! / 1000,
        mean: j.mean! / 1000,
        errors: { connect: j.connect!, read: j.read!, write: j.write!, status: j.status!, timeout: j.timeout! },
        cpuS: secs(children[0]) + secs(children[1]),
      });
    });
  });
}

export const wrkVersion = (wrk: string): Promise<string> =>
  new Promise((resolve) => execFile(wrk, ['-v'], (_e, stdout, stderr) => resolve(`${stdout}${stderr}`.split('\n')[0]?.trim() ?? '')));

export interface WrkCpuResult extends WrkResult {
  /** Requests answered with a 2xx. */
  completed: number;
  /** CPU microseconds per completed request of each probed process, and of wrk itself (`wrk`). */
  cpuUsPerReq: Record<string, number>;
}

/** A wrk run between two readings of the processes' CPU time: CPU per completed request of each. */
export async function runWrkWithCpu(wrk: string, opts: WrkOptions, probes: CpuProbe[]): Promise<WrkCpuResult> {
  const before = await snapshot(probes);
  const w = await runWrk(wrk, opts);
  const after = await snapshot(probes);
  const completed = w.requests - w.errors.status;
  const cpu = cpuPerRequestUs(before, after, completed);
  cpu['wrk'] = completed > 0 ? (w.cpuS * 1e6) / completed : Number.NaN;
  return { ...w, completed, cpuUsPerReq: cpu };
}

/** Every error wrk counted: non-2xx answers and socket errors. */
export const wrkErrors = (w: WrkResult): number => w.errors.status + w.errors.connect + w.errors.read + w.errors.write + w.errors.timeout;
