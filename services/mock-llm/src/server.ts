import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import express, { type ErrorRequestHandler } from 'express';
import type { Registry } from 'prom-client';
import { createLogger, createMetricsRegistry, readPackageVersion, type Logger } from '@actionedx/shared';
import { BehaviourPatchSchema, behaviourToWire, mergeBehaviour, type MockBehaviour } from './behaviour.js';
import { createCompletionHandler, type MockStats } from './completion.js';
import { DEFAULT_BEHAVIOUR } from './config.js';
import { createMockLlmMetrics } from './metrics.js';
import { errorBody, invalidRequestBody } from './openai-format.js';

export interface MockLlmDeps {
  /** Default: a silent logger, so tests stay quiet. */
  logger?: Logger;
  /** Default: a new `createMetricsRegistry('mock-llm')`. Must not already hold the mock's metrics. */
  registry?: Registry;
}

export interface ListeningMockLlm {
  /** Base URL for the `openai` SDK, e.g. `http://127.0.0.1:8090/v1`. */
  url: string;
  port: number;
  /** Stops listening and drops every connection, keep-alive and stalled ones included. */
  close(): Promise<void>;
}

export interface MockLlm {
  app: express.Express;
  listen(port: number, host?: string): Promise<ListeningMockLlm>;
  /** Changes what later requests do, like `PUT /mock/config`; returns the whole new behaviour. */
  setDefaults(patch: Partial<MockBehaviour>): MockBehaviour;
}

/** This package's version, for its log lines. */
export const MOCK_LLM_VERSION = readPackageVersion(import.meta.url);

const MODELS = ['gpt-4o', 'gpt-4o-mini', 'mock-1'];
/** Chat histories can be long; a large cap keeps the mock from refusing what a real provider accepts. */
const BODY_LIMIT = '8mb';

/** The mock OpenAI-compatible server; `config` may be a whole MockLlmConfig or only the behaviour to change. */
export function createMockLlm(config: Partial<MockBehaviour> = {}, deps: MockLlmDeps = {}): MockLlm {
  const logger = deps.logger ?? createLogger({ service: 'mock-llm', version: MOCK_LLM_VERSION, level: 'silent' });
  const registry = deps.registry ?? createMetricsRegistry('mock-llm');
  const metrics = createMockLlmMetrics(registry);
  const stats: MockStats = { completions: 0, streams: 0, client_disconnects: 0, in_flight: 0, peak_in_flight: 0, arrivals: [] };
  let behaviour = mergeBehaviour(DEFAULT_BEHAVIOUR, config);
  const setDefaults = (patch: Partial<MockBehaviour>) => (behaviour = mergeBehaviour(behaviour, patch));

  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: BODY_LIMIT }));

  // A fault served `fault_count` times switches itself off: "fail the next 3 calls, then recover".
  const onDefaultFault = () => {
    if (behaviour.faultCount === 0) return;
    const left = behaviour.faultCount - 1;
    behaviour = mergeBehaviour(behaviour, left === 0 ? { faultCount: 0, fault: 'none' } : { faultCount: left });
  };
  app.post('/v1/chat/completions', createCompletionHandler({ behaviour: () => behaviour, stats, metrics, logger, onDefaultFault }));
  app.get('/v1/models', (_req, res) => {
    res.json({
      object: 'list',
      data: MODELS.map((id) => ({ id, object: 'model', created: 1_700_000_000, owned_by: 'mock-llm' })),
    });
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/metrics', async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });

  app.get('/mock/config', (_req, res) => {
    res.json(behaviourToWire(behaviour));
  });
  app.put('/mock/config', (req, res) => {
    const patch = BehaviourPatchSchema.safeParse(req.body ?? {});
    if (!patch.success) {
      res.status(400).json(invalidRequestBody(patch.error));
      return;
    }
    res.json(behaviourToWire(setDefaults(patch.data)));
  });
  app.get('/mock/stats', (_req, res) => {
    res.json(stats);
  });
  app.post('/mock/stats/reset-peak', (_req, res) => {
    stats.peak_in_flight = stats.in_flight;
    res.json(stats);
  });

  app.use((req, res) => {
    res.status(404).json(errorBody(`Unknown route ${req.method} ${req.path}`, 'invalid_request_error', 'not_found'));
  });
  // Malformed JSON and oversized bodies arrive here with their status; anything else is a bug worth a log line.
  const onError: ErrorRequestHandler = (err: { status?: number; message?: string }, _req, res, _next) => {
    const status = typeof err.status === 'number' && err.status >= 400 && err.status < 500 ? err.status : 500;
    if (status === 500) logger.error({ err }, 'unhandled error');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const message = status === 500 ? 'Internal error' : (err.message ?? 'Bad request');
    res.status(status).json(errorBody(message, status === 500 ? 'server_error' : 'invalid_request_error', null));
  };
  app.use(onError);

  async function listen(port: number, host = '127.0.0.1'): Promise<ListeningMockLlm> {
    const server = app.listen(port, host);
    await once(server, 'listening');
    const bound = (server.address() as AddressInfo).port;
    const hostInUrl = host.includes(':') ? `[${host}]` : host;
    return {
      url: `http://${hostInUrl}:${bound}/v1`,
      port: bound,
      close: () =>
        new Promise<void>((resolve, reject) => {
          server.close((err) => (err ? reject(err) : resolve()));
          server.closeAllConnections();
        }),
    };
  }

  return { app, listen, setDefaults };
}
