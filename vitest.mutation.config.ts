import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

/**
 * The unit tests that exercise the orchestrator's single flight and chat pipeline, for `npm run mutation`
 * (StrykerJS): no build, no processes; Redis on REDIS_URL for the flight tests' Redis backend.
 * The root config with its test files replaced (mergeConfig would add them to the root's).
 */
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: [
      'services/orchestrator/src/cache/answer-flights.test.ts',
      'services/orchestrator/src/chat/*.test.ts',
      'services/orchestrator/src/orchestrator.test.ts',
    ],
  },
});
