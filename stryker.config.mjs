/**
 * Mutation testing of the orchestrator's single flight and chat pipeline (`npm run mutation`; not part of
 * `npm test`). It changes the code one small way at a time and checks that a unit test fails: a mutant that
 * survives is behaviour no test pins down. Needs Redis on REDIS_URL (the flight tests' Redis backend).
 * Report: reports/mutation/index.html.
 * @type {import('@stryker-mutator/api/core').PartialStrykerOptions}
 */
export default {
  testRunner: 'vitest',
  plugins: ['@stryker-mutator/vitest-runner'],
  vitest: { configFile: 'vitest.mutation.config.ts', related: false },
  mutate: [
    'services/orchestrator/src/cache/answer-flights.ts',
    'services/orchestrator/src/cache/local-flight.ts',
    'services/orchestrator/src/chat/chat-pipeline.ts',
  ],
  coverageAnalysis: 'perTest',
  // Two cores: one test process per core.
  concurrency: 2,
  // The flight tests wait on timers (leases, slow computations): a mutant that hangs them is a timeout, not a kill.
  timeoutMS: 15_000,
  timeoutFactor: 2,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  // Only what the tests read goes into the sandbox.
  ignorePatterns: ['/bench', '/k8s', '/monitoring', '/docs', '/test', '/reports', 'dist', '*.tsbuildinfo'],
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
