// @ts-check
/**
 * The closing lines of `.ci/run`, from vitest's JSON report: what was skipped and why, what failed outside
 * a test, and last the plain `N passed, N failed`. A skipped or todo test counts as failed unless
 * test/expected-skips.json expects it under the current conditions; so does a test file that failed to
 * run, a vitest exit code the tests do not explain, a run of no test at all, and each failed check named
 * with --failed-check (lint, cycles).
 *
 *   node scripts/test-summary.mjs <vitest-report.json> [--exit-code N] [--failed-check NAME]...
 *
 * Exits 1 when the count of failures is not zero.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * @typedef {{ ancestorTitles: string[], title: string, fullName: string, status: string, failureMessages?: string[] }} AssertionResult
 * @typedef {{ name: string, status: string, message?: string, assertionResults: AssertionResult[] }} FileResult
 * @typedef {{ testResults: FileResult[] }} VitestReport
 * @typedef {{ envUnset?: string, commandMissing?: string, fileMissing?: string }} SkipCondition
 * @typedef {{ file: string, test: string, when?: SkipCondition, why: string }} ExpectedSkip
 * @typedef {{ env: Record<string, string | undefined>, commandExists: (name: string) => boolean, fileExists: (repoRelativePath: string) => boolean }} Facts
 * @typedef {{ exitCode?: number, failedChecks?: string[] }} RunInfo
 * @typedef {{ passed: number, failed: number, lines: string[] }} Summary
 */

const CONDITIONS = ['envUnset', 'commandMissing', 'fileMissing'];
const MAX_LISTED = 20;

/**
 * Checks the allowlist's shape; every problem is reported at once.
 * @param {unknown} doc
 * @returns {ExpectedSkip[]}
 */
export function readExpectedSkips(doc) {
  const skips = /** @type {{ skips?: unknown }} */ (doc ?? {}).skips;
  if (!Array.isArray(skips)) throw new Error('expected skips: "skips" must be a list');
  const problems = [];
  for (const [i, entry] of skips.entries()) {
    const at = `skips[${i}]`;
    if (typeof entry !== 'object' || entry === null) {
      problems.push(`${at} is not an object`);
      continue;
    }
    for (const key of ['file', 'test', 'why']) {
      if (typeof entry[key] !== 'string' || entry[key] === '') problems.push(`${at}.${key} must be a non-empty string`);
    }
    if (typeof entry.test === 'string') {
      try {
        new RegExp(entry.test);
      } catch (e) {
        problems.push(`${at}.test is not a regular expression: ${/** @type {Error} */ (e).message}`);
      }
    }
    for (const key of Object.keys(entry.when ?? {})) {
      if (!CONDITIONS.includes(key)) problems.push(`${at}.when.${key} is unknown (known: ${CONDITIONS.join(', ')})`);
    }
  }
  if (problems.length > 0) throw new Error(`expected skips:\n  - ${problems.join('\n  - ')}`);
  return skips;
}

/**
 * Whether every condition of the entry holds now.
 * @param {SkipCondition | undefined} when
 * @param {Facts} facts
 */
function conditionsHold(when, facts) {
  if (!when) return true;
  if (when.envUnset !== undefined && (facts.env[when.envUnset] ?? '') !== '') return false;
  if (when.commandMissing !== undefined && facts.commandExists(when.commandMissing)) return false;
  if (when.fileMissing !== undefined && facts.fileExists(when.fileMissing)) return false;
  return true;
}

/**
 * @param {VitestReport | undefined} report vitest's JSON report; undefined when none was written
 * @param {ExpectedSkip[]} expected
 * @param {Facts} facts
 * @param {string} root the repository, to make the report's file names relative
 * @param {RunInfo} [run]
 * @returns {Summary}
 */
export function summarize(report, expected, facts, root, run = {}) {
  const lines = [];
  let passed = 0;
  let failed = 0;
  if (report === undefined) {
    lines.push(`no test report was written${run.exitCode ? ` (the test command exited with ${run.exitCode})` : ''}`);
    failed += 1;
  } else {
    /** @type {Map<ExpectedSkip, number>} */
    const expectedCounts = new Map();
    /** @type {string[]} */
    const unexpected = [];
    let failedTests = 0;
    for (const file of report.testResults) {
      const name = isAbsolute(file.name) ? relative(root, file.name) : file.name;
      let failedHere = 0;
      for (const test of file.assertionResults) {
        if (test.status === 'passed') passed += 1;
        else if (test.status === 'failed') failedHere += 1;
        else {
          const entry = expected.find((e) => e.file === name && new RegExp(e.test).test(test.fullName) && conditionsHold(e.when, facts));
          if (entry) expectedCounts.set(entry, (expectedCounts.get(entry) ?? 0) + 1);
          else unexpected.push(`${name} > ${test.fullName} (${test.status})`);
        }
      }
      failedTests += failedHere;
      if (file.status === 'failed' && failedHere === 0) {
        // the file did not load, or failed outside its tests (a hook, an unhandled error)
        const first = (file.message ?? '').split('\n')[0] || 'no message';
        lines.push(`failed outside a test (counted as 1 failed): ${name}: ${first}`);
        failed += 1;
      }
    }
    failed += failedTests;
    for (const [entry, count] of expectedCounts) lines.push(`skipped as expected: ${count} in ${entry.file} (${entry.why})`);
    if (unexpected.length > 0) {
      lines.push(`unexpected skips (counted as failed; only test/expected-skips.json may skip): ${unexpected.length}`);
      for (const u of unexpected.slice(0, MAX_LISTED)) lines.push(`  ${u}`);
      if (unexpected.length > MAX_LISTED) lines.push(`  ... and ${unexpected.length - MAX_LISTED} more`);
      failed += unexpected.length;
    }
    if (run.exitCode && failed === 0) {
      lines.push(`vitest exited with ${run.exitCode} though no test failed (an unhandled error? see above): counted as 1 failed`);
      failed += 1;
    }
    if (passed === 0 && failed === 0) {
      lines.push('no test ran: counted as 1 failed');
      failed += 1;
    }
  }
  for (const check of run.failedChecks ?? []) {
    lines.push(`failed check (counted as 1 failed): ${check}`);
    failed += 1;
  }
  lines.push(`${passed} passed, ${failed} failed`);
  return { passed, failed, lines };
}

/** @param {string} name */
function commandExists(name) {
  return spawnSync('sh', ['-c', `command -v "$1"`, 'sh', name], { stdio: 'ignore' }).status === 0;
}

function main() {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const args = process.argv.slice(2);
  /** @type {RunInfo & { failedChecks: string[] }} */
  const run = { failedChecks: [] };
  let reportPath;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--exit-code') run.exitCode = Number(args[++i]);
    else if (arg === '--failed-check') run.failedChecks.push(String(args[++i]));
    else if (reportPath === undefined && arg !== undefined && !arg.startsWith('--')) reportPath = arg;
    else {
      console.error(`test-summary: unexpected argument "${arg}"\nusage: node scripts/test-summary.mjs <vitest-report.json> [--exit-code N] [--failed-check NAME]...`);
      process.exit(2);
    }
  }
  if (reportPath === undefined || (run.exitCode !== undefined && !Number.isInteger(run.exitCode))) {
    console.error('usage: node scripts/test-summary.mjs <vitest-report.json> [--exit-code N] [--failed-check NAME]...');
    process.exit(2);
  }
  /** @type {VitestReport | undefined} */
  let report;
  try {
    const text = readFileSync(reportPath, 'utf8');
    if (text.trim() !== '') report = JSON.parse(text);
  } catch (e) {
    if (/** @type {NodeJS.ErrnoException} */ (e).code !== 'ENOENT') console.error(`test-summary: cannot read ${reportPath}: ${/** @type {Error} */ (e).message}`);
  }
  const expected = readExpectedSkips(JSON.parse(readFileSync(resolve(root, 'test/expected-skips.json'), 'utf8')));
  const facts = { env: process.env, commandExists, fileExists: (/** @type {string} */ p) => existsSync(resolve(root, p)) };
  const { failed, lines } = summarize(report, expected, facts, root, run);
  for (const line of lines) console.log(line);
  process.exit(failed > 0 ? 1 : 0);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
