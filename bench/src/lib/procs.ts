import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The repository root and the bench's build output. */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const BENCH_DIST = fileURLToPath(new URL('../', import.meta.url));

// ---------------------------------------------------------------- cleanup

type CleanupFn = () => Promise<void> | void;
const cleanups = new Map<number, { name: string; fn: CleanupFn }>();
const pids = new Set<number>();
let nextId = 0;

/** Registers something to stop at the end (or on Ctrl-C); returns a function that unregisters it. */
export function onCleanup(name: string, fn: CleanupFn): () => void {
  const id = nextId++;
  cleanups.set(id, { name, fn });
  return () => void cleanups.delete(id);
}

/** A process that must never outlive the bench: SIGKILLed by `killStragglers` if still alive. */
export function trackPid(pid: number | undefined): void {
  if (pid) pids.add(pid);
}

/** Runs every registered cleanup (latest first), each bounded in time. */
export async function runCleanups(timeoutMs = 8000): Promise<void> {
  const all = [...cleanups.entries()].reverse();
  cleanups.clear();
  for (const [, c] of all) {
    await Promise.race([
      Promise.resolve()
        .then(c.fn)
        .catch((err) => console.error(`cleanup ${c.name} failed:`, err)),
      new Promise((r) => setTimeout(r, timeoutMs)),
    ]);
  }
  killStragglers();
}

/** SIGKILL every tracked process that is still alive, by pid. */
export function killStragglers(): void {
  for (const pid of pids) {
    if (alive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone meanwhile */
      }
    }
  }
  pids.clear();
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- /proc

const CLK_TCK = 100;

/** User + system CPU seconds a process has used so far (from /proc/<pid>/stat); NaN when it is gone. */
export function procCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After the command: state(0) ... utime is field 14 of the whole line, i.e. index 11 here; stime 12.
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return Number.NaN;
  }
}

/** Resident set size in bytes (from /proc/<pid>/status); NaN when it is gone. */
export function procRssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** Pids whose command line (argv) matches. */
export function findPids(match: (argv: string[]) => boolean): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').filter(Boolean);
      if (argv.length && match(argv)) out.push(Number(d));
    } catch {
      /* exited */
    }
  }
  return out;
}

/** The pid of the nats-server listening on `port` (started by testkit's startNats). */
export function natsServerPid(port: number): number | undefined {
  return findPids((a) => a[0]?.endsWith('nats-server') === true && a.includes('-p') && a[a.indexOf('-p') + 1] === String(port))[0];
}

// ---------------------------------------------------------------- child processes of the bench

export interface NodeChild {
  proc: ChildProcess;
  pid: number;
  /** Messages the child sent over IPC. */
  onMessage(fn: (msg: any) => void): void;
  send(msg: unknown): void;
  exited: Promise<number | null>;
  stderr(): string;
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts `bench/dist/<script>` in its own Node process with an IPC channel. It inherits the bench's raised
 * file-descriptor limit. Registered for cleanup.
 */
export function spawnNode(script: string, args: string[] = [], env: Record<string, string> = {}): NodeChild {
  const proc = spawn(process.execPath, [`${BENCH_DIST}${script}`, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
  });
  trackPid(proc.pid);
  let err = '';
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err = (err + d).slice(-8000);
  });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const stop = async (graceMs = 3000) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(t);
  };
  const unregister = onCleanup(`child ${script}`, stop);
  void exited.then(unregister);
  return {
    proc,
    pid: proc.pid!,
    onMessage: (fn) => void proc.on('message', fn),
    send: (msg) => void proc.send(msg as never),
    exited,
    stderr: () => err,
    stop,
  };
}

/** Waits for the first IPC message matching `pred`, failing if the child exits or time runs out. */
export function nextMessage<T = any>(child: NodeChild, pred: (m: any) => boolean, timeoutMs: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${what}: no answer within ${timeoutMs} ms ${child.stderr().slice(-1000)}`));
    }, timeoutMs);
    const onMsg = (m: any) => {
      if (!pred(m)) return;
      cleanup();
      resolve(m as T);
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`${what}: the process exited (${code}) ${child.stderr().slice(-2000)}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.proc.off('message', onMsg);
      child.proc.off('exit', onExit);
    };
    child.proc.on('message', onMsg);
    child.proc.once('exit', onExit);
  });
}
