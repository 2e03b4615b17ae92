import { fileURLToPath } from 'node:url';
import { configDefaults, defineConfig } from 'vitest/config';
import { INTEGRATION_BESIDE_CODE } from './test/setup/integration-beside-code.js';

const src = (p: string) => fileURLToPath(new URL(p, import.meta.url));


// Tests import workspace packages from source, so a test run never reads a stale build.
// Integration and end-to-end tests spawn the built services (dist/), which `npm test` builds first.
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
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // Forks, not threads: the integration setup hands the server URLs over in process.env.
    pool: 'forks',
    reporters: ['default'],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          // no servers: everything beside the code but the list above, and the test tooling's own tests
          include: ['shared/src/**/*.test.ts', 'services/*/src/**/*.test.ts', 'scripts/**/*.test.ts', 'test/setup/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...INTEGRATION_BESIDE_CODE],
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          // real Redis, NATS (and MongoDB when there is one), the services as processes, a real Prometheus
          include: [...INTEGRATION_BESIDE_CODE, 'test/integration/**/*.test.ts'],
          globalSetup: ['test/setup/integration-global-setup.ts'],
        },
      },
      {
        extends: true,
        // promtool, kubectl: the configuration of Prometheus, Grafana, Compose and Kubernetes
        test: { name: 'monitoring', include: ['test/monitoring/**/*.test.ts'] },
      },
      {
        extends: true,
        // the seed's client in headless Chromium against the built platform
        test: { name: 'e2e', include: ['test/e2e/**/*.test.ts'] },
      },
    ],
  },
});
