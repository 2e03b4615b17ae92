import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (p: string) => fileURLToPath(new URL(p, import.meta.url));

// Tests import workspace packages from source, so a test run never reads a stale build.
// Integration tests spawn the built services (dist/), which `npm test` builds first.
export default defineConfig({
  resolve: {
    alias: {
      '@actionedx/shared': src('./shared/src/index.ts'),
      '@actionedx/mock-llm': src('./services/mock-llm/src/index.ts'),
      '@actionedx/orchestrator': src('./services/orchestrator/src/index.ts'),
      '@actionedx/gateway': src('./services/gateway/src/index.ts'),
      '@actionedx/testkit': src('./testkit/src/index.ts'),
    },
  },
  test: {
    include: ['shared/src/**/*.test.ts', 'services/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
