export { adminKeyRoutes } from './admin-key-routes.js';
export { API_KEY_PREFIX, ApiKeyCreateSchema, parseApiKey, type ApiKeyRecord, type ApiKeyView } from './api-key.js';
export { MemoryApiKeyStore, RedisApiKeyStore, type ApiKeyStore } from './api-key-store.js';
export { ApiKeys } from './api-keys.js';
export { AUTH_MODES, type AuthConfig, type AuthMode, type JwtConfig } from './auth-config.js';
export { Authenticator, BOOTSTRAP_ADMIN_USER } from './authenticator.js';
export { authenticate, credentialOf, requireAdmin } from './http-auth.js';
export { AuthFailure, JwtVerifier, type AuthFailureReason } from './jwt-verifier.js';
export { bindCaller, isAdmin, principalOf, userIdOf, type AuthMethod, type Principal } from './principal.js';
