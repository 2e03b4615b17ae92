/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): the functions with the most self time, the files and
 * packages they live in, and the platform's own functions by inclusive time.
 *
 *   node bench/dist/profile/summarize.js <file.cpuprofile> [--top=25] [--json]
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ROOT } from '../lib/procs.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface Entry {
  name: string;
  ms: number;
  pct: number;
}

export interface ProfileSummary {
  file: string;
  /** Sampled time, idle excluded (ms). */
  busyMs: number;
  wallMs: number;
  selfTop: Entry[];
  byFile: Entry[];
  byPackage: Entry[];
  /** Inclusive time of functions in the repository's own code (services/, shared/). */
  ownInclusive: Entry[];
  /** For the top self-time functions: the nearest library or platform function that called them. */
  callers: Array<{ name: string; callers: Entry[] }>;
}

const SPECIAL = new Set(['(idle)', '(program)', '(garbage collector)', '(root)']);

function where(cf: CallFrame): string {
  let u = cf.url;
  if (!u) return '';
  if (u.startsWith('file://')) u = fileURLToPath(u);
  if (u.startsWith(ROOT)) u = u.slice(ROOT.length);
  return `${u}:${cf.lineNumber + 1}`;
}

function fileOf(cf: CallFrame): string {
  const w = where(cf);
  return w ? w.replace(/:\d+$/, '') : cf.functionName || '(native)';
}

/** node_modules package, a workspace (services/x, shared), node: internals, or a special bucket. */
function packageOf(cf: CallFrame): string {
  if (SPECIAL.has(cf.functionName)) return cf.functionName;
  const f = fileOf(cf);
  const nm = f.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = f.slice(nm + 'node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? f);
  }
  if (f.startsWith('node:')) return 'node: (core)';
  const m = /^(services\/[^/]+|shared|testkit|bench)\//.exec(f);
  if (m) return m[1]!;
  return f.includes('/') ? f : '(native/V8)';
}

const label = (cf: CallFrame) => `${cf.functionName || '(anonymous)'} ${where(cf)}`.trim();

export function summarizeProfile(file: string, top = 25): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i]!;
    // timeDeltas[i] is the time before sample i; the time spent at sample i is the next delta.
    const dt = (p.timeDeltas[i + 1] ?? 0) / 1000;
    self.set(id, (self.get(id) ?? 0) + dt);
  }
  const idle = [...self.entries()].filter(([id]) => byId.get(id)?.callFrame.functionName === '(idle)').reduce((a, [, ms]) => a + ms, 0);
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const busy = total - idle;

  const agg = (key: (cf: CallFrame) => string) => {
    const m = new Map<string, number>();
    for (const [id, ms] of self) {
      const cf = byId.get(id)!.callFrame;
      if (cf.functionName === '(idle)') continue;
      const k = key(cf);
      m.set(k, (m.get(k) ?? 0) + ms);
    }
    return [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([name, ms]) => ({ name, ms, pct: (100 * ms) / busy }));
  };

  // Inclusive time of the repository's own functions: each sample counts once per distinct function on its stack.
  const inclusive = new Map<string, number>();
  for (const [id, ms] of self) {
    if (byId.get(id)?.callFrame.functionName === '(idle)') continue;
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const cf = byId.get(cur)!.callFrame;
      const w = where(cf);
      if (!/^(services|shared)\//.test(w)) continue;
      const k = label(cf);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + ms);
    }
  }

  // Who is behind the top self-time functions (natives such as writeBuffer say little on their own): the nearest
  // caller frame that lives in a package or in the platform's code, not in Node's internals.
  const selfTop = agg(label).slice(0, top);
  const callers: ProfileSummary['callers'] = [];
  for (const e of selfTop.slice(0, 8)) {
    const m = new Map<string, number>();
    for (const [id, ms] of self) {
      if (label(byId.get(id)!.callFrame) !== e.name) continue;
      let cur = parent.get(id);
      let found = '(no library caller)';
      while (cur !== undefined) {
        const cf = byId.get(cur)!.callFrame;
        const w = where(cf);
        if (w && !w.startsWith('node:')) {
          found = label(cf);
          break;
        }
        cur = parent.get(cur);
      }
      m.set(found, (m.get(found) ?? 0) + ms);
    }
    callers.push({
      name: e.name,
      callers: [...m.entries()]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 4)
        .map(([name, ms]) => ({ name, ms, pct: (100 * ms) / busy })),
    });
  }

  return {
    file,
    busyMs: busy,
    callers,
    wallMs: (p.endTime - p.startTime) / 1000,
    selfTop,
    byFile: agg(fileOf).slice(0, 15),
    byPackage: agg(packageOf).slice(0, 15),
    ownInclusive: [...inclusive.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 20)
      .map(([name, ms]) => ({ name, ms, pct: (100 * ms) / busy })),
  };
}

export function renderSummary(s: ProfileSummary): string {
  const list = (title: string, es: Entry[]) =>
    [`  ${title}`, ...es.map((e) => `    ${e.pct.toFixed(1).padStart(5)}%  ${e.ms.toFixed(0).padStart(6)} ms  ${e.name}`)].join('\n');
  return [
    `${s.file}`,
    `  busy ${s.busyMs.toFixed(0)} ms of ${s.wallMs.toFixed(0)} ms sampled (idle excluded; % of busy)`,
    list('top self time (function file:line)', s.selfTop),
    list('self time by package / workspace', s.byPackage),
    list('self time by file', s.byFile),
    list("inclusive time, the platform's own functions", s.ownInclusive),
    '  nearest library/platform caller of the top self-time functions',
    ...s.callers.map((c) => [`    ${c.name}`, ...c.callers.map((e) => `      ${e.pct.toFixed(1).padStart(5)}%  ← ${e.name}`)].join('\n')),
  ].join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const top = Number(args.find((a) => a.startsWith('--top='))?.slice(6) ?? 25);
  const files = args.filter((a) => !a.startsWith('--'));
  if (files.length === 0) {
    console.error('usage: node bench/dist/profile/summarize.js <file.cpuprofile>... [--top=25] [--json]');
    process.exit(2);
  }
  for (const f of files) {
    const s = summarizeProfile(f, top);
    console.log(args.includes('--json') ? JSON.stringify(s, null, 2) : renderSummary(s));
  }
}
