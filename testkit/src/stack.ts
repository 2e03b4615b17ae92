import { testAuthEnv } from './auth.js';
import { startNats, startNatsCluster, startService, until, type NatsCluster, type NatsServer, type ServiceProcess } from './processes.js';

/** Services listen before their bus connects; a stack is handed over only once each one is ready. */
async function ready(service: ServiceProcess): Promise<ServiceProcess> {
  await until(async () => (await fetch(`${service.url}/readyz`)).status === 200, 15_000, `${service.name} to be ready`);
  return service;
}

const NO_LIMIT = {
  requests_per_minute: 1_000_000,
  tokens_per_minute: 1_000_000_000,
  daily_budget_usd: 1_000_000,
  ws_connections: 100_000,
  ws_messages_per_second: 100_000,
  ws_message_burst: 100_000,
};
/** `RATE_LIMITS` that no test meets. */
export const UNLIMITED = JSON.stringify({ user: NO_LIMIT, admin: NO_LIMIT });

export interface Stack {
  gateway: ServiceProcess;
  orchestrators: ServiceProcess[];
  /** The first mock LLM: the one orchestrators call unless told otherwise (OPENAI_BASE_URL). */
  mockLlm: ServiceProcess;
  /** Every mock LLM of the stack (`mockLlms` of them), each its own process with its own faults. */
  mockLlms: ServiceProcess[];
  /** The stack's NATS: one server, or with `natsCluster` the cluster (its `url` lists every node). */
  nats: NatsServer;
  /** Set when the stack runs on a NATS cluster (`natsCluster`). */
  cluster: NatsCluster | undefined;
  redisUrl: string;
  /** Base URL of the gateway, e.g. http://127.0.0.1:PORT */
  url: string;
  wsUrl: string;
  /** Another orchestrator on the same bus. */
  addOrchestrator(env?: Record<string, string>): Promise<ServiceProcess>;
  /** Another gateway replica on the same bus and Redis, with the same environment (plus `env`). */
  addGateway(env?: Record<string, string>): Promise<ServiceProcess>;
  stop(): Promise<void>;
}

export interface StackOptions {
  orchestrators?: number;
  gatewayEnv?: Record<string, string>;
  orchestratorEnv?: Record<string, string>;
  mockLlmEnv?: Record<string, string>;
  /** Mock LLM processes to start (for model targets with different behaviours). Default 1. */
  mockLlms?: number;
  /** Redis database of this stack; defaults to one per vitest worker so parallel files never share cache entries. */
  redisDb?: number;
  /** Run on a cluster of this many nats-servers (3) with the work queue replicated on each. */
  natsCluster?: number;
  /** `required` (default): the gateway wants a token or key (testkit's `TEST_AUTH`, see `authHeaders`). */
  auth?: 'required' | 'open';
}

export function redisDbForWorker(): number {
  const pool = Number(process.env.VITEST_POOL_ID ?? '1');
  return 1 + (pool % 15);
}

/** The distributed platform as separate processes: its own nats-server, the machine's Redis, mock-llm, gateway, N orchestrators. */
export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const cluster = opts.natsCluster ? await startNatsCluster(opts.natsCluster) : undefined;
  const nats: NatsServer = cluster ? { url: cluster.url, port: cluster.nodes[0]!.port, stop: () => cluster.stop() } : await startNats();
  const queueEnv = cluster ? { QUEUE_REPLICAS: String(Math.min(3, opts.natsCluster!)) } : {};
  const redisUrl = `${process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'}/${opts.redisDb ?? redisDbForWorker()}`;
  const started: ServiceProcess[] = [];
  try {
    const mockLlms: ServiceProcess[] = [];
    for (let i = 0; i < (opts.mockLlms ?? 1); i++) {
      const m = await startService('mock-llm', { ...opts.mockLlmEnv }, { label: i === 0 ? 'mock-llm' : `mock-llm-${i + 1}` });
      started.push(m);
      mockLlms.push(m);
    }
    const mockLlm = mockLlms[0]!;
    let n = 0;
    const addOrchestrator = async (env: Record<string, string> = {}) => {
      const o = await startService(
        'orchestrator',
        {
          NATS_URL: nats.url,
          REDIS_URL: redisUrl,
          OPENAI_BASE_URL: `${mockLlm.url}/v1`,
          OPENAI_API_KEY: 'test-key',
          OPENAI_MAX_RETRIES: '0',
          WORKER_ID: `orch-${++n}`,
          ...queueEnv,
          ...opts.orchestratorEnv,
          ...env,
        },
        { label: `orchestrator-${n}` },
      );
      started.push(o);
      return ready(o);
    };
    const orchestrators: ServiceProcess[] = [];
    for (let i = 0; i < (opts.orchestrators ?? 2); i++) orchestrators.push(await addOrchestrator());
    const gatewayEnv = {
      NATS_URL: nats.url,
      REDIS_URL: redisUrl,
      HOST: '127.0.0.1',
      HEARTBEAT_MS: '200',
      ACK_TIMEOUT_MS: '1000',
      ...(opts.auth === 'open' ? { AUTH_MODE: 'open' } : testAuthEnv()),
      // Tests and benchmarks that are not about limits must not meet them (tight loops of one user, thousands of
      // sockets, many paid answers); those that are set their own RATE_LIMITS.
      RATE_LIMITS: UNLIMITED,
      ...opts.gatewayEnv,
    };
    let g = 0;
    const addGateway = async (env: Record<string, string> = {}) => {
      const gw = await startService('gateway', { ...gatewayEnv, ...env }, { label: g++ === 0 ? 'gateway' : `gateway-${g}` });
      started.push(gw);
      return ready(gw);
    };
    const gateway = await addGateway();
    return {
      gateway,
      orchestrators,
      mockLlm,
      mockLlms,
      nats,
      cluster,
      redisUrl,
      url: gateway.url,
      wsUrl: gateway.url.replace('http', 'ws'),
      addOrchestrator,
      addGateway,
      async stop() {
        await Promise.all(started.map((s) => s.stop(2000)));
        await nats.stop();
      },
    };
  } catch (err) {
    await Promise.all(started.map((s) => s.stop(500)));
    await nats.stop();
    throw err;
  }
}
