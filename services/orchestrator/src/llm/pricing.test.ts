import { describe, expect, it } from 'vitest';
import { ConfigError } from '@actionedx/shared';
import { DEFAULT_MODEL_PRICES, PriceTable, resolvePrices } from './pricing.js';

const usage = { prompt_tokens: 1_000_000, completion_tokens: 500_000, total_tokens: 1_500_000 };

describe('PriceTable', () => {
  it('prices usage per million tokens, by the answering model or the requested one', () => {
    const table = new PriceTable();
    expect(table.cost({ answeredBy: 'gpt-4o', requested: 'gpt-4o', usage })).toBe(2.5 + 5);
    // A dated snapshot costs what its model does.
    expect(table.cost({ answeredBy: 'gpt-4o-mini-2024-07-18', requested: 'gpt-4o-mini', usage })).toBeCloseTo(0.15 + 0.3, 8);
    // A provider that renames the model: the route's price.
    expect(table.cost({ answeredBy: 'acme/gpt-4o', requested: 'gpt-4o', usage })).toBe(7.5);
  });

  it('records an unpriced model at 0, reports it once and counts every call', () => {
    const reported: string[] = [];
    const calls: string[] = [];
    const table = new PriceTable(DEFAULT_MODEL_PRICES, { onUnpriced: (m) => reported.push(m), onUnpricedCall: (m) => calls.push(m) });
    for (let i = 0; i < 3; i++) expect(table.cost({ answeredBy: 'llama-9', requested: 'llama-9', usage })).toBe(0);
    table.cost({ answeredBy: 'other', requested: 'other', usage });
    expect(reported).toEqual(['llama-9', 'other']);
    expect(calls).toEqual(['llama-9', 'llama-9', 'llama-9', 'other']);
  });
});

describe('resolvePrices (MODEL_PRICES)', () => {
  it('keeps the defaults when unset and merges a JSON price list over them', () => {
    expect(resolvePrices({})).toEqual(DEFAULT_MODEL_PRICES);
    const prices = resolvePrices({ MODEL_PRICES: '{"llama-9":{"input":0.2,"output":0.4},"gpt-4o":{"input":1,"output":2}}' });
    expect(prices['llama-9']).toEqual({ input: 0.2, output: 0.4 });
    expect(prices['gpt-4o']).toEqual({ input: 1, output: 2 });
    expect(prices['gpt-4o-mini']).toEqual(DEFAULT_MODEL_PRICES['gpt-4o-mini']);
  });

  it('names the variable and the field for bad values', () => {
    expect(() => resolvePrices({ MODEL_PRICES: 'not json' })).toThrow(ConfigError);
    try {
      resolvePrices({ MODEL_PRICES: '{"m":{"input":-1,"output":"x"}}' });
      expect.unreachable();
    } catch (err) {
      expect((err as ConfigError).problems.join('\n')).toMatch(/MODEL_PRICES\.m\.input/);
      expect((err as ConfigError).problems.join('\n')).toMatch(/MODEL_PRICES\.m\.output/);
    }
  });
});
