/**
 * Faults a completion request can be answered with; `none` answers normally.
 * - `rate_limit`: 429 with `retry-after` (`retry_after_s`); `server_error`: 500.
 * - `hang`: never answers, not even the headers; `stall`: the headers and a role chunk, then nothing.
 * - `stall_mid`: half the tokens, then nothing (the connection stays open).
 * - `cut`: half the tokens, then the connection is destroyed; `truncate`: half the tokens, then a clean end
 *   without a finish reason or `[DONE]`.
 * - `length`: half the tokens, finished with `finish_reason: length` (as a provider cut off by max_tokens).
 * - `no_usage`: a normal answer with no usage at all, as providers that ignore `include_usage` send.
 */
export const FAULTS = ['none', 'rate_limit', 'server_error', 'hang', 'stall', 'stall_mid', 'cut', 'truncate', 'length', 'no_usage'] as const;
export type Fault = (typeof FAULTS)[number];

export const isFault = (value: string): value is Fault => (FAULTS as readonly string[]).includes(value);

/** Model names that ask for a fault, so a client that can only set the model can still get one. */
const FAULT_MODEL_PREFIX = 'mock-fault-';

export class UnknownFaultError extends Error {
  constructor(readonly value: string) {
    super(`Unknown fault '${value}'; expected one of ${FAULTS.join(', ')}`);
    this.name = 'UnknownFaultError';
  }
}

export interface FaultChoice {
  /** The `x-mock-fault` header, if sent. */
  header: string | undefined;
  model: string;
  /** The server's default fault and the share of requests that get it. */
  fault: Fault;
  faultRate: number;
  /** Uniform in [0, 1); injected so the rate can be tested. */
  random: () => number;
}

/** Header first, then the model name, then the default drawn at its rate: an explicit ask always wins. */
export function chooseFault({ header, model, fault, faultRate, random }: FaultChoice): Fault {
  if (header !== undefined) {
    if (!isFault(header)) throw new UnknownFaultError(header);
    return header;
  }
  if (model.startsWith(FAULT_MODEL_PREFIX)) {
    const named = model.slice(FAULT_MODEL_PREFIX.length);
    if (!isFault(named)) throw new UnknownFaultError(named);
    return named;
  }
  return fault !== 'none' && random() < faultRate ? fault : 'none';
}
