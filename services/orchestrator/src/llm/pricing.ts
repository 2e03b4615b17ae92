import { z } from 'zod';
import { ConfigError, type Usage } from '@actionedx/shared';

/** US dollars per million tokens. */
export const ModelPriceSchema = z.object({ input: z.number().nonnegative(), output: z.number().nonnegative() });
export type ModelPrice = z.infer<typeof ModelPriceSchema>;

/** List prices of common models; `MODEL_PRICES` adds to and overrides them. */
export const DEFAULT_MODEL_PRICES: Readonly<Record<string, ModelPrice>> = {
  'gpt-4o': { input: 2.5, output: 10 },
  'gpt-4o-mini': { input: 0.15, output: 0.6 },
  'gpt-4.1': { input: 2, output: 8 },
  'gpt-4.1-mini': { input: 0.4, output: 1.6 },
  'gpt-4.1-nano': { input: 0.1, output: 0.4 },
  'mock-1': { input: 0, output: 0 },
};

/** A dated snapshot (`gpt-4o-2024-08-06`) costs what its model does unless priced on its own. */
const SNAPSHOT_SUFFIX = /-\d{4}-\d{2}-\d{2}$/;

export interface PricedCall {
  /** What the model answered as (the provider's name, often a dated snapshot). */
  answeredBy: string;
  /** What the request asked for (the route). */
  requested: string;
  usage: Usage;
}

/**
 * Prices of model calls. A call whose model has no price is recorded at cost 0, which would hide spend: each
 * such model is reported once through `onUnpriced` (logged) and every such call is counted (`onUnpricedCall`).
 */
export class PriceTable {
  private readonly prices: Map<string, ModelPrice>;
  private readonly reported = new Set<string>();

  constructor(
    prices: Readonly<Record<string, ModelPrice>> = DEFAULT_MODEL_PRICES,
    private readonly hooks: { onUnpriced?: (model: string) => void; onUnpricedCall?: (model: string) => void } = {},
  ) {
    this.prices = new Map(Object.entries(prices));
  }

  /** The price of `model`, or of the model a dated snapshot belongs to. */
  priceOf(model: string): ModelPrice | undefined {
    return this.prices.get(model) ?? this.prices.get(model.replace(SNAPSHOT_SUFFIX, ''));
  }

  /** US dollars, rounded to 1e-8; 0 (reported) when neither the answering nor the requested model is priced. */
  cost(call: PricedCall): number {
    const price = this.priceOf(call.answeredBy) ?? this.priceOf(call.requested);
    if (!price) {
      this.unpriced(call.answeredBy);
      return 0;
    }
    const usd = (call.usage.prompt_tokens * price.input + call.usage.completion_tokens * price.output) / 1_000_000;
    return Math.round(usd * 1e8) / 1e8;
  }

  private unpriced(model: string): void {
    this.hooks.onUnpricedCall?.(model);
    if (this.reported.has(model)) return;
    this.reported.add(model);
    this.hooks.onUnpriced?.(model);
  }
}

const PriceListSchema = z.record(z.string().min(1).max(200), ModelPriceSchema);

/**
 * `MODEL_PRICES`: a JSON object `{"<model>": {"input": <usd per 1M>, "output": <usd per 1M>}}` merged over the
 * defaults. A bad value is a `ConfigError` naming the variable, reported with every other one.
 */
export function resolvePrices(env: Readonly<Record<string, string | undefined>>): Record<string, ModelPrice> {
  const raw = env.MODEL_PRICES;
  if (raw === undefined || raw.trim() === '') return { ...DEFAULT_MODEL_PRICES };
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new ConfigError(['MODEL_PRICES: must be JSON, e.g. {"my-model":{"input":0.5,"output":1.5}} (USD per million tokens)']);
  }
  const parsed = PriceListSchema.safeParse(value);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `MODEL_PRICES${i.path.map((p) => `.${String(p)}`).join('')}: ${i.message}`));
  }
  return { ...DEFAULT_MODEL_PRICES, ...parsed.data };
}
