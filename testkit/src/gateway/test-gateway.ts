import {
  InProcessBus,
  createLogger,
  createMetricsRegistry,
  type Redis,
} from '@actionedx/shared';
import type { Registry } from 'prom-client';
import {
  GATEWAY_VERSION,
  createGateway,
  loadGatewayConfig,
  type Gateway,
  type GatewayConfig,
  type SessionStore,
} from '@actionedx/gateway';
import { testAuthEnv } from '../auth.js';
import type { SseEvent } from '../clients.js';

export interface TestGateway {
  bus: InProcessBus;
  config: GatewayConfig;
  gateway: Gateway;
  registry: Registry;
  /** `http://127.0.0.1:<port>` */
  baseUrl: string;
  /** `ws://127.0.0.1:<port>` */
  wsUrl: string;
  /** `http://127.0.0.1:<ops port>`: `/metrics` and the full health report. */
  opsUrl: string;
  port: number;
  close(): Promise<void>;
}

/** Test timers: short, so a lost worker is noticed in 150 ms. */
export const TEST_TIMERS = {
  ackTimeoutMs: 200,
  heartbeatMs: 50,
  requestTimeoutMs: 10_000,
} as const;

/**
 * The configuration of a test gateway with authentication required, on the test credentials (testkit's
 * `TEST_AUTH`): pass it as the overrides of `startTestGateway` to opt in, with more overrides spread after.
 */
export function authRequiredConfig(env: Record<string, string> = {}): Partial<GatewayConfig> {
  const c = loadGatewayConfig({ NODE_ENV: 'test', ...testAuthEnv(env) });
  return { auth: c.auth, corsOrigins: c.corsOrigins, roleLimits: c.roleLimits };
}

/**
 * A gateway on an in-process bus, listening on an ephemeral port of 127.0.0.1. Open (no authentication)
 * unless the overrides say otherwise (`authRequiredConfig()`), so tests of everything else need no token.
 */
export async function startTestGateway(
  overrides: Partial<GatewayConfig> = {},
  deps: { sessionStore?: SessionStore; redis?: Redis; limiterRedis?: Redis; metricsRegistry?: Registry } = {},
): Promise<TestGateway> {
  const bus = new InProcessBus();
  const base = loadGatewayConfig({ NODE_ENV: 'test' }, { defaultAuthMode: 'open' });
  const config: GatewayConfig = {
    ...base,
    ...TEST_TIMERS,
    // A turn whose client left is cancelled at once, as before resuming existed; tests of resume set their own grace.
    resume: { ...base.resume, graceMs: 0 },
    port: 0,
    host: '127.0.0.1',
    shutdownGraceMs: 200,
    ...overrides,
  };
  const logger = createLogger({ service: 'gateway', version: GATEWAY_VERSION, level: process.env.TEST_LOG_LEVEL ?? 'silent', pretty: false });
  const registry = createMetricsRegistry('gateway', { defaultMetrics: false });
  const gateway = createGateway({ bus, config, logger, registry, ...deps });
  const { port } = await gateway.listen();
  const ops = await gateway.listenOps(0, '127.0.0.1');
  return {
    bus,
    config,
    gateway,
    registry,
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    opsUrl: `http://127.0.0.1:${ops.port}`,
    async close() {
      await gateway.close({ graceMs: 100 });
      await bus.close();
    },
  };
}

/** The value of one series of a counter or gauge (0 when absent). */
export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (metric === undefined) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  const match = values.find((v) =>
    Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want),
  );
  return match?.value ?? 0;
}

/** Read a whole SSE response into its events. */
export async function readSseResponse(res: Response): Promise<SseEvent[]> {
  return parseSseText(await res.text());
}

/** The events of a complete SSE body, each `data` parsed as JSON. */
export function parseSseText(text: string): SseEvent[] {
  const events: SseEvent[] = [];
  for (const block of text.split('\n\n')) {
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data.push(line.slice(6));
    }
    if (data.length > 0) events.push({ event, data: JSON.parse(data.join('\n')) });
  }
  return events;
}

/** The value of one sample in Prometheus text, whatever the order of its labels (undefined when absent). */
export function sampleValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}
