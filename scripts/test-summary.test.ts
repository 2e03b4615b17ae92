import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readExpectedSkips, summarize } from './test-summary.mjs';

const ROOT = '/repo';
type Status = 'passed' | 'failed' | 'skipped' | 'todo' | 'pending';
const test = (fullName: string, status: Status) => ({ ancestorTitles: [], title: fullName, fullName, status });
const file = (name: string, tests: ReturnType<typeof test>[], status = tests.some((t) => t.status === 'failed') ? 'failed' : 'passed', message = '') => ({
  name: `${ROOT}/${name}`,
  status,
  message,
  assertionResults: tests,
});
const facts = (over: Partial<{ env: Record<string, string>; commands: string[]; files: string[] }> = {}) => ({
  env: over.env ?? {},
  commandExists: (c: string) => (over.commands ?? []).includes(c),
  fileExists: (f: string) => (over.files ?? []).includes(f),
});

const MONGO = {
  file: 'store.test.ts',
  test: '^Mongo on MONGO_URL ',
  when: { envUnset: 'MONGO_URL' },
  why: 'no MongoDB',
};
const KUBECTL = { file: 'k8s.test.ts', test: 'kubectl is not installed', when: { commandMissing: 'kubectl', envUnset: 'KUBECTL' }, why: 'no kubectl' };

describe('summarize', () => {
  it('ends with the plain count, skips listed by the allowlist with their reason', () => {
    const report = {
      testResults: [
        file('a.test.ts', [test('one', 'passed'), test('two', 'passed')]),
        file('store.test.ts', [test('memory works', 'passed'), test('Mongo on MONGO_URL stores', 'skipped'), test('Mongo on MONGO_URL reads', 'skipped')]),
      ],
    };
    const { passed, failed, lines } = summarize(report, [MONGO], facts(), ROOT);
    expect([passed, failed]).toEqual([3, 0]);
    expect(lines).toEqual(['skipped as expected: 2 in store.test.ts (no MongoDB)', '3 passed, 0 failed']);
  });

  it('counts a skip the allowlist does not name, a todo, and an expected skip whose condition does not hold, as failed', () => {
    const report = {
      testResults: [
        file('a.test.ts', [test('one', 'passed'), test('quietly skipped', 'skipped'), test('later', 'todo')]),
        file('store.test.ts', [test('Mongo on MONGO_URL stores', 'skipped')]),
        file('k8s.test.ts', [test('renders (skipped: kubectl is not installed)', 'skipped')]),
      ],
    };
    // MONGO_URL is set (so Mongo should have run) and kubectl is there
    const { failed, lines } = summarize(report, [MONGO, KUBECTL], facts({ env: { MONGO_URL: 'mongodb://m' }, commands: ['kubectl'] }), ROOT);
    expect(failed).toBe(4);
    expect(lines[0]).toBe('unexpected skips (counted as failed; only test/expected-skips.json may skip): 4');
    expect(lines).toContain('  a.test.ts > quietly skipped (skipped)');
    expect(lines).toContain('  a.test.ts > later (todo)');
    expect(lines).toContain('  store.test.ts > Mongo on MONGO_URL stores (skipped)');
    expect(lines.at(-1)).toBe('1 passed, 4 failed');
    // the same skips are expected where their conditions hold
    expect(summarize(report, [MONGO, KUBECTL], facts(), ROOT).lines.at(-1)).toBe('1 passed, 2 failed');
  });

  it('matches the allowlist on the file too', () => {
    const report = { testResults: [file('other.test.ts', [test('Mongo on MONGO_URL stores', 'skipped')])] };
    expect(summarize(report, [MONGO], facts(), ROOT).lines.at(-1)).toBe('0 passed, 1 failed');
  });

  it('counts a file that failed outside its tests once, and failed tests each', () => {
    const report = {
      testResults: [
        file('broken.test.ts', [], 'failed', "Cannot find module './x.js'\n    at ..."),
        file('a.test.ts', [test('ok', 'passed'), test('bad', 'failed'), test('worse', 'failed')]),
      ],
    };
    const { lines } = summarize(report, [], facts(), ROOT, { exitCode: 1 });
    expect(lines).toEqual([
      "failed outside a test (counted as 1 failed): broken.test.ts: Cannot find module './x.js'",
      '1 passed, 3 failed',
    ]);
  });

  it('never reports success for a run that exited non-zero, wrote no report, or ran nothing', () => {
    const ok = { testResults: [file('a.test.ts', [test('one', 'passed')])] };
    expect(summarize(ok, [], facts(), ROOT, { exitCode: 1 }).lines.at(-1)).toBe('1 passed, 1 failed');
    expect(summarize(undefined, [], facts(), ROOT, { exitCode: 1 }).lines).toEqual([
      'no test report was written (the test command exited with 1)',
      '0 passed, 1 failed',
    ]);
    expect(summarize({ testResults: [] }, [], facts(), ROOT).lines).toEqual(['no test ran: counted as 1 failed', '0 passed, 1 failed']);
  });

  it('adds each failed check (lint, cycles) as one failure', () => {
    const ok = { testResults: [file('a.test.ts', [test('one', 'passed')])] };
    const { failed, lines } = summarize(ok, [], facts(), ROOT, { exitCode: 0, failedChecks: ['eslint'] });
    expect(failed).toBe(1);
    expect(lines).toEqual(['failed check (counted as 1 failed): eslint', '1 passed, 1 failed']);
  });
});

describe('readExpectedSkips', () => {
  it('reads the repository allowlist: every entry names a file that exists and says why', () => {
    const entries = readExpectedSkips(JSON.parse(readFileSync(new URL('../test/expected-skips.json', import.meta.url), 'utf8')));
    expect(entries.length).toBeGreaterThan(0);
    for (const e of entries) {
      expect(readFileSync(new URL(`../${e.file}`, import.meta.url), 'utf8').length, e.file).toBeGreaterThan(0);
      expect(e.why.length, e.file).toBeGreaterThan(10);
    }
  });

  it('reports every bad entry at once', () => {
    expect(() => readExpectedSkips({ skips: [{ file: 'a', test: '(', why: 'x' }, { test: 'b', when: { envSet: 'X' } }] })).toThrow(
      /skips\[0\]\.test is not a regular expression[\s\S]*skips\[1\]\.file must be a non-empty string[\s\S]*skips\[1\]\.why must be a non-empty string[\s\S]*skips\[1\]\.when\.envSet is unknown/,
    );
    expect(() => readExpectedSkips({})).toThrow(/"skips" must be a list/);
  });
});
