import { describe, expect, it } from 'vitest';
import { ConfigError } from '@actionedx/shared';
import { loadMockLlmConfig } from './config.js';

describe('loadMockLlmConfig', () => {
  it('has the documented defaults', () => {
    expect(loadMockLlmConfig({})).toMatchObject({
      port: 8090,
      host: '127.0.0.1',
      ttftMs: 0,
      tokensPerSecond: 0,
      completionTokens: 48,
      fault: 'none',
      faultRate: 1,
      logLevel: 'info',
    });
  });

  it('reads every variable, port 0 included', () => {
    const config = loadMockLlmConfig({
      PORT: '0',
      HOST: '0.0.0.0',
      MOCK_LLM_TTFT_MS: '250',
      MOCK_LLM_TOKENS_PER_SECOND: '37.5',
      MOCK_LLM_COMPLETION_TOKENS: '12',
      MOCK_LLM_FAULT: 'stall',
      MOCK_LLM_FAULT_RATE: '0.25',
      LOG_LEVEL: 'debug',
      LOG_PRETTY: 'false',
    });
    expect(config).toMatchObject({ port: 0, host: '0.0.0.0', ttftMs: 250, tokensPerSecond: 37.5 });
    expect(config).toMatchObject({ completionTokens: 12, fault: 'stall', faultRate: 0.25, logLevel: 'debug' });
    expect(config.logPretty).toBe(false);
  });

  it('lists every bad variable at once', () => {
    let error: unknown;
    try {
      loadMockLlmConfig({ PORT: 'x', MOCK_LLM_FAULT: 'boom', MOCK_LLM_FAULT_RATE: '2' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const names = (error as ConfigError).problems.map((p) => p.split(':')[0]);
    expect(names).toEqual(['PORT', 'MOCK_LLM_FAULT', 'MOCK_LLM_FAULT_RATE']);
  });
});
