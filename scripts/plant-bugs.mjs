#!/usr/bin/env node
/**
 * Plants known bugs one at a time (a one-line change each), runs the tests meant to catch them, and puts the
 * file back: every bug must make at least one test fail. The bugs are the ones a new user planted and the suite
 * once missed (see the list below); keep it growing when a bug slips through.
 *
 *   node scripts/plant-bugs.mjs                  every bug, against the unit tests (Redis on REDIS_URL for some)
 *   node scripts/plant-bugs.mjs --integration    also the process tests (test/integration): rebuilds dist/ with
 *                                                the bug, and again once the file is back (NATS_URL, REDIS_URL)
 *   node scripts/plant-bugs.mjs sharing ttl      only these bugs
 *
 * It refuses to touch a file with uncommitted changes, and writes the original back whatever happens (an error,
 * Ctrl-C); with --integration it rebuilds dist/ before it exits. Exit status 1 when a bug went unnoticed.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** Each bug: where it goes (`from` must occur exactly once in `file`), and the tests expected to catch it. */
const BUGS = [
  {
    id: 'sharing',
    what: 'per-user answers shared with everyone (cache-key scope always global)',
    file: 'services/orchestrator/src/chat/cached-answers.ts',
    from: 'scope: sharingScope(task.sharing, req.user_id),',
    to: "scope: 'global',",
    unit: ['services/orchestrator/src/chat/chat-pipeline.test.ts', 'services/orchestrator/src/orchestrator.test.ts'],
    integration: ['test/integration/distributed.test.ts'],
  },
  {
    id: 'quality',
    what: 'answers that failed the quality check cached anyway',
    file: 'services/orchestrator/src/chat/model-answers.ts',
    from: 'return { entry, cacheable: verdict.passed };',
    to: 'return { entry, cacheable: true };',
    unit: ['services/orchestrator/src/chat/chat-pipeline.test.ts', 'services/orchestrator/src/orchestrator.test.ts'],
    integration: ['test/integration/distributed.test.ts'],
  },
  {
    id: 'ttl',
    what: 'the 24 h and 12 h TTLs collapsed to 30 min',
    file: 'services/orchestrator/src/chat/cached-answers.ts',
    from: 'ttlSeconds: task.ttlSeconds,',
    to: 'ttlSeconds: task.ttlSeconds >= 43_200 ? 1_800 : task.ttlSeconds,',
    unit: ['services/orchestrator/src/chat/chat-pipeline.test.ts', 'services/orchestrator/src/orchestrator.test.ts'],
    integration: ['test/integration/distributed.test.ts'],
  },
  {
    id: 'follower',
    what: 'one departing single-flight follower aborts the shared model call for everyone',
    file: 'services/orchestrator/src/cache/local-flight.ts',
    from: 'if (--this.followers === 0 && !this.settled)',
    to: 'if (--this.followers >= 0 && !this.settled)',
    unit: ['services/orchestrator/src/cache/answer-flights.test.ts', 'services/orchestrator/src/orchestrator.test.ts'],
    integration: ['test/integration/distributed.test.ts'],
  },
  {
    id: 'no-superseded-cancel',
    what: 'no superseded cancel on retry',
    file: 'services/gateway/src/chat/in-flight-request.ts',
    from: "if (this.attempt >= 0) this.core.publishCancel(this.requestId, 'superseded', this.headers, this.attempt);",
    to: '',
    unit: ['services/gateway/src/chat/chat-dispatcher.test.ts'],
    integration: [],
  },
  {
    id: 'no-gave-up-cancel',
    what: 'no cancel when giving up after the last attempt',
    file: 'services/gateway/src/chat/in-flight-request.ts',
    from: "this.fail(err, 'gave_up');\n      return;",
    to: 'this.fail(err, undefined);\n      return;',
    unit: ['services/gateway/src/chat/chat-dispatcher.test.ts'],
    integration: [],
  },
  {
    id: 'no-up-to-attempt',
    what: 'a superseded cancel without up_to_attempt (it stops the new attempt too)',
    file: 'services/gateway/src/chat/in-flight-request.ts',
    from: "'superseded', this.headers, this.attempt)",
    to: "'superseded', this.headers)",
    unit: ['services/gateway/src/chat/chat-dispatcher.test.ts'],
    integration: [],
  },
  {
    id: 'worker-ignores-attempt',
    what: 'the worker stops whatever attempt runs, whatever up_to_attempt says',
    file: 'services/orchestrator/src/chat/running-jobs.ts',
    from: 'if (!r || r.attempt > upTo) return undefined;',
    to: 'if (!r) return undefined;',
    unit: ['services/orchestrator/src/orchestrator.test.ts'],
    integration: [],
  },
  {
    id: 'limit',
    what: 'the message limit moved from 16,000 characters',
    file: 'shared/src/contracts/chat.ts',
    from: 'messageMaxChars: 16_000,',
    to: 'messageMaxChars: 15_999,',
    unit: ['shared/src/contracts/contracts.test.ts', 'services/gateway/src/http/chat-http.test.ts', 'services/gateway/src/ws/assistant-socket.test.ts'],
    integration: ['test/integration/embedded.test.ts'],
  },
  {
    id: 'health',
    what: 'a reachable orchestrator pool reported as not reachable by workers',
    file: 'services/gateway/src/health/health-check.ts',
    from: 'workers_reachable: true,',
    to: 'workers_reachable: false,',
    unit: ['services/gateway/src/http/admin-http.test.ts'],
    integration: ['test/integration/embedded.test.ts'],
  },
];

const args = process.argv.slice(2);
const integration = args.includes('--integration');
const only = args.filter((a) => !a.startsWith('--'));
const unknown = only.filter((id) => !BUGS.some((b) => b.id === id));
if (unknown.length > 0) {
  console.error(`unknown bug(s): ${unknown.join(', ')}; known: ${BUGS.map((b) => b.id).join(', ')}`);
  process.exit(2);
}
const bugs = BUGS.filter((b) => only.length === 0 || only.includes(b.id));

// --check: only say whether every bug still finds its line (a unit test runs this, so moved code fails CI, not the next planting).
if (args.includes('--check')) {
  const lost = bugs.filter((b) => {
    const text = readFileSync(join(ROOT, b.file), 'utf8');
    const at = text.indexOf(b.from);
    return at < 0 || text.indexOf(b.from, at + 1) >= 0;
  });
  for (const b of lost) console.error(`${b.id}: '${b.from}' must occur exactly once in ${b.file}`);
  for (const b of bugs.filter((x) => !lost.includes(x))) console.log(`${b.id}: found in ${b.file}`);
  process.exit(lost.length === 0 ? 0 : 1);
}

const run = (cmd, cmdArgs, opts = {}) => spawnSync(cmd, cmdArgs, { cwd: ROOT, encoding: 'utf8', env: process.env, ...opts });

/** What is planted right now, to put back on any exit. */
let planted;
let distDirty = false;
const restore = () => {
  if (planted) {
    writeFileSync(join(ROOT, planted.file), planted.original);
    planted = undefined;
  }
};
const rebuild = () => {
  const r = run('npx', ['tsc', '-b'], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('npm run build failed');
};
process.on('exit', () => {
  restore();
  if (distDirty) {
    distDirty = false;
    run('npx', ['tsc', '-b'], { stdio: 'inherit' });
  }
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => process.exit(130));

function plant(bug) {
  const path = join(ROOT, bug.file);
  if (run('git', ['diff', '--quiet', 'HEAD', '--', bug.file]).status !== 0) {
    throw new Error(`${bug.file} has uncommitted changes: commit or stash them first`);
  }
  const original = readFileSync(path, 'utf8');
  const at = original.indexOf(bug.from);
  if (at < 0 || original.indexOf(bug.from, at + 1) >= 0) {
    throw new Error(`${bug.id}: '${bug.from}' must occur exactly once in ${bug.file} (the code moved: update the bug)`);
  }
  planted = { file: bug.file, original };
  writeFileSync(path, original.slice(0, at) + bug.to + original.slice(at + bug.from.length));
}

/** Runs vitest on `files`; the names of the tests that failed. */
function failingTests(files) {
  const dir = mkdtempSync(join(tmpdir(), 'plant-bugs-'));
  const report = join(dir, 'report.json');
  try {
    run('npx', ['vitest', 'run', ...files, '--reporter=json', `--outputFile=${report}`], { stdio: 'ignore' });
    let json;
    try {
      json = JSON.parse(readFileSync(report, 'utf8'));
    } catch {
      return ['(vitest wrote no report: the run itself failed)'];
    }
    const failed = [];
    for (const file of json.testResults) {
      const name = file.name.replace(ROOT, '');
      const tests = file.assertionResults.filter((t) => t.status === 'failed');
      if (tests.length === 0 && file.status === 'failed') failed.push(`${name}: ${file.message?.split('\n')[0] ?? 'the file failed'}`);
      for (const t of tests) failed.push(`${name} > ${t.fullName}`);
    }
    return failed;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const results = [];
try {
  for (const bug of bugs) {
    console.log(`\n== ${bug.id}: ${bug.what}\n   ${bug.file}: '${bug.from}' -> '${bug.to}'`);
    plant(bug);
    try {
      const files = [...bug.unit];
      if (integration && bug.integration.length > 0) {
        distDirty = true;
        rebuild();
        files.push(...bug.integration);
      }
      const failed = failingTests(files);
      for (const f of failed) console.log(`   caught by ${f}`);
      if (failed.length === 0) console.log('   NOT CAUGHT');
      results.push({ bug, failed });
    } finally {
      restore();
    }
  }
} finally {
  restore();
  if (distDirty) {
    console.log('\nrebuilding dist/ without the bugs');
    rebuild();
    distDirty = false;
  }
}

const missed = results.filter((r) => r.failed.length === 0);
console.log('\nbug                      tests that failed');
for (const { bug, failed } of results) console.log(`${bug.id.padEnd(24)} ${failed.length === 0 ? 'NONE' : failed.length}`);
console.log(`\n${results.length - missed.length} of ${results.length} planted bugs caught`);
process.exit(missed.length === 0 ? 0 : 1);
