import type { Usage } from '@actionedx/shared';

/** US dollars per million tokens. Unknown models cost 0 and are reported once in the logs. */
export const MODEL_PRICES: Record<string, { input: number; output: number }> = {
  'gpt-4o': { input: 2.5, output: 10 },
  'gpt-4o-mini': { input: 0.15, output: 0.6 },
  'gpt-4.1': { input: 2, output: 8 },
  'gpt-4.1-mini': { input: 0.4, output: 1.6 },
  'mock-1': { input: 0, output: 0 },
};

export function costUsd(model: string, usage: Usage): number {
  const price = MODEL_PRICES[model];
  if (!price) return 0;
  const cost = (usage.prompt_tokens * price.input + usage.completion_tokens * price.output) / 1_000_000;
  return Math.round(cost * 1e8) / 1e8;
}

export const knownModel = (model: string): boolean => Object.hasOwn(MODEL_PRICES, model);
