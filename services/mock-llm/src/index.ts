export { createMockLlm, MOCK_LLM_VERSION, type MockLlm, type MockLlmDeps, type ListeningMockLlm } from './server.js';
export { loadMockLlmConfig, MockLlmEnvSchema, DEFAULT_BEHAVIOUR, type MockLlmConfig } from './config.js';
export type { MockBehaviour } from './behaviour.js';
export type { MockStats } from './completion.js';
export { FAULTS, isFault, type Fault } from './faults.js';
export { generateAnswer, tokenize } from './text.js';
