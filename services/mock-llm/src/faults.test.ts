import { describe, expect, it } from 'vitest';
import { chooseFault, UnknownFaultError } from './faults.js';

const base = { header: undefined, model: 'gpt-4o', fault: 'none' as const, faultRate: 1, random: () => 0.5 };

describe('chooseFault', () => {
  it('takes the header first, then the model name, then the default', () => {
    expect(chooseFault({ ...base, header: 'cut', model: 'mock-fault-stall', fault: 'truncate' })).toBe('cut');
    expect(chooseFault({ ...base, model: 'mock-fault-stall', fault: 'truncate' })).toBe('stall');
    expect(chooseFault({ ...base, fault: 'truncate' })).toBe('truncate');
    expect(chooseFault(base)).toBe('none');
  });

  it('lets a header of none switch a default fault off', () => {
    expect(chooseFault({ ...base, header: 'none', fault: 'server_error' })).toBe('none');
  });

  it('serves the default fault to the configured share of requests', () => {
    const at = (draw: number) => chooseFault({ ...base, fault: 'rate_limit', faultRate: 0.3, random: () => draw });
    expect(at(0.29)).toBe('rate_limit');
    expect(at(0.3)).toBe('none');
    expect(chooseFault({ ...base, fault: 'rate_limit', faultRate: 0, random: () => 0 })).toBe('none');
  });

  it('refuses an unknown fault', () => {
    expect(() => chooseFault({ ...base, header: 'explode' })).toThrow(UnknownFaultError);
    expect(() => chooseFault({ ...base, model: 'mock-fault-explode' })).toThrow(UnknownFaultError);
  });
});
