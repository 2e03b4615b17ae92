import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

/**
 * CPU on the machine over an interval, split into the bench's and everyone else's. The machine is shared with
 * other sessions (test suites, builds): their work lands on the same two cores and moves the figures, so each
 * scenario reports how much of it there was.
 */
export interface LoadFigures {
  seconds: number;
  /** Cores busy on average, whole machine (user, nice, system, irq, softirq from /proc/stat). */
  machineCores: number;
  /** The bench and every process it started (its own and its reaped children's CPU time, /proc/self/stat). */
  benchCores: number;
  /** The machine's Redis, which the bench uses and other sessions' tests use too (INFO cpu). */
  redisCores: number;
  /** What is left: other sessions' work. */
  otherCores: number;
  /** CPU the hypervisor gave to someone else while this VM wanted it (steal in /proc/stat). */
  stealCores: number;
  loadAverage: string;
}

const HZ = 100;

interface Reading {
  at: number;
  busy: number;
  steal: number;
  self: number;
  redis: number;
}

function machineTicks(): { busy: number; steal: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal ...
  const at = (i: number) => f[i] ?? 0;
  return { busy: at(0) + at(1) + at(2) + at(5) + at(6), steal: at(7) };
}

/** This process's CPU seconds with those of its children that have exited and been reaped. */
function selfTreeSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime, stime, cutime, cstime are fields 14-17 of the line: 11-14 after the command.
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / HZ;
}

export class LoadMeter {
  private constructor(
    private readonly start: Reading,
    private readonly redisCpu: () => Promise<number>,
  ) {}

  private static async read(redisCpu: () => Promise<number>): Promise<Reading> {
    const m = machineTicks();
    return { at: performance.now(), busy: m.busy / HZ, steal: m.steal / HZ, self: selfTreeSeconds(), redis: await redisCpu().catch(() => Number.NaN) };
  }

  static async begin(redisCpu: () => Promise<number>): Promise<LoadMeter> {
    return new LoadMeter(await LoadMeter.read(redisCpu), redisCpu);
  }

  /**
   * The figures since `begin`. Children still running are not yet in the bench's share (their time is
   * counted when they are reaped): call it once the scenario's processes have stopped.
   */
  async end(): Promise<LoadFigures> {
    const b = await LoadMeter.read(this.redisCpu);
    const a = this.start;
    const s = (b.at - a.at) / 1000;
    const cores = (x: number) => (s > 0 ? x / s : Number.NaN);
    const machine = cores(b.busy - a.busy);
    const bench = cores(b.self - a.self);
    const redis = cores(b.redis - a.redis);
    let loadAverage = '';
    try {
      loadAverage = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    } catch {
      /* unknown */
    }
    return {
      seconds: s,
      machineCores: machine,
      benchCores: bench,
      redisCores: redis,
      otherCores: Math.max(0, machine - bench - (Number.isFinite(redis) ? redis : 0)),
      stealCores: cores(b.steal - a.steal),
      loadAverage,
    };
  }
}

export const describeLoad = (l: LoadFigures): string =>
  `${l.machineCores.toFixed(2)} of ${cpus().length} cores busy on average: bench ${l.benchCores.toFixed(2)}, redis ${l.redisCores.toFixed(2)}, ` +
  `other work ${l.otherCores.toFixed(2)}, steal ${l.stealCores.toFixed(2)}; load average ${l.loadAverage}`;
