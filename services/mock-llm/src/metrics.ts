import { Counter, Gauge, type Registry } from 'prom-client';
import type { Fault } from './faults.js';

/** How a completion request ended: answered, answered with a fault, or left by its client first. */
export type Outcome = 'ok' | `fault_${Exclude<Fault, 'none'>}` | 'client_closed';

export function createMockLlmMetrics(registry: Registry) {
  const registers = [registry];
  return {
    completions: new Counter({
      name: 'mock_llm_completions_total',
      help: 'Completion requests served, counted once when each ends, by model, stream and outcome',
      labelNames: ['model', 'stream', 'outcome'] as const,
      registers,
    }),
    clientDisconnects: new Counter({
      name: 'mock_llm_client_disconnects_total',
      help: 'Completion requests whose client closed the connection before the answer ended',
      registers,
    }),
    inFlight: new Gauge({ name: 'mock_llm_in_flight', help: 'Completion requests being answered now', registers }),
  };
}
export type MockLlmMetrics = ReturnType<typeof createMockLlmMetrics>;
