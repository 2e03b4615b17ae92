export * from './task-registry.js';
export * from './build-prompt.js';
export { DEFAULT_SHARING, resolveSharing, sharingScope, type Sharing, type SharingScope } from './sharing.js';
export { DEFAULT_TTLS, resolveTtls } from './ttl.js';
export { effectiveMaxTokens, samplingOf } from './sampling.js';
