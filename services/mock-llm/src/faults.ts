/** Faults a completion request can be answered with; `none` answers normally. */
export const FAULTS = ['none', 'rate_limit', 'server_error', 'stall', 'cut', 'truncate'] as const;
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
