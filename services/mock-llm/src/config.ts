import { z } from 'zod';
import { CommonEnvSchema, env, loadConfig } from '@actionedx/shared';
import { FAULTS } from './faults.js';
import { mergeBehaviour, type MockBehaviour } from './behaviour.js';

/** Read from PORT, HOST, MOCK_LLM_TTFT_MS, MOCK_LLM_TOKENS_PER_SECOND, MOCK_LLM_COMPLETION_TOKENS, MOCK_LLM_FAULT,
 * MOCK_LLM_FAULT_RATE, MOCK_LLM_FAULT_COUNT, MOCK_LLM_RETRY_AFTER_S, LOG_LEVEL and LOG_PRETTY. */
export interface MockLlmConfig extends MockBehaviour {
  /** Default 8090; 0 picks a free port. */
  port: number;
  /** Default 127.0.0.1. */
  host: string;
  logLevel: z.output<typeof CommonEnvSchema.shape.LOG_LEVEL>;
  /** Unset: pretty on a developer's terminal only. */
  logPretty: boolean | undefined;
}

export const MockLlmEnvSchema = z
  .object({
    PORT: env.port(8090),
    HOST: z.string().min(1).default('127.0.0.1'),
    MOCK_LLM_TTFT_MS: env.int(0),
    MOCK_LLM_TOKENS_PER_SECOND: env.number(0),
    MOCK_LLM_COMPLETION_TOKENS: env.int(48),
    MOCK_LLM_FAULT: z.enum(FAULTS).default('none'),
    MOCK_LLM_FAULT_RATE: z.coerce.number().min(0).max(1).default(1),
    MOCK_LLM_FAULT_COUNT: env.int(0),
    MOCK_LLM_RETRY_AFTER_S: env.number(1),
    LOG_LEVEL: CommonEnvSchema.shape.LOG_LEVEL,
    LOG_PRETTY: CommonEnvSchema.shape.LOG_PRETTY,
  })
  .transform(
    (e): MockLlmConfig => ({
      port: e.PORT,
      host: e.HOST,
      ttftMs: e.MOCK_LLM_TTFT_MS,
      tokensPerSecond: e.MOCK_LLM_TOKENS_PER_SECOND,
      completionTokens: e.MOCK_LLM_COMPLETION_TOKENS,
      fault: e.MOCK_LLM_FAULT,
      faultRate: e.MOCK_LLM_FAULT_RATE,
      faultCount: e.MOCK_LLM_FAULT_COUNT,
      retryAfterS: e.MOCK_LLM_RETRY_AFTER_S,
      logLevel: e.LOG_LEVEL,
      logPretty: e.LOG_PRETTY,
    }),
  );

/** Parses the environment once; throws a ConfigError listing every bad variable. */
export function loadMockLlmConfig(source: NodeJS.ProcessEnv = process.env): MockLlmConfig {
  return loadConfig(MockLlmEnvSchema, source);
}

/** The behaviour with no variable set: one source for the defaults, the schema above. */
export const DEFAULT_BEHAVIOUR: MockBehaviour = mergeBehaviour(loadMockLlmConfig({}), {});
