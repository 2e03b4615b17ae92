import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { UserIdSchema } from '@actionedx/shared';
import { CallerLimitsOverridesSchema } from '../admission/limits.js';
import { ROLES } from '../admission/limits.js';

/**
 * API keys look like `axk_<id>_<secret>`: `id` (16 hex) names the stored record and may be shown and logged;
 * `secret` (32 random bytes, base64url) is shown once, at creation, and only its SHA-256 is stored. A secret
 * of 256 random bits needs no slow hash: there is nothing to guess.
 */
export const API_KEY_PREFIX = 'axk_';
const API_KEY_FORMAT = /^axk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
export const API_KEY_ID = /^[0-9a-f]{16}$/;

export const looksLikeApiKey = (credential: string): boolean => credential.startsWith(API_KEY_PREFIX);

export function parseApiKey(key: string): { id: string; secret: string } | undefined {
  const m = API_KEY_FORMAT.exec(key);
  return m === null ? undefined : { id: m[1]!, secret: m[2]! };
}

export const sha256Hex = (text: string): string => createHash('sha256').update(text).digest('hex');

/** Constant-time comparison of a presented secret with a stored SHA-256. */
export function secretMatches(secret: string, storedSha256Hex: string): boolean {
  const presented = createHash('sha256').update(secret).digest();
  const stored = Buffer.from(storedSha256Hex, 'hex');
  return stored.length === presented.length && timingSafeEqual(presented, stored);
}

export function mintApiKey(): { id: string; secret: string; key: string } {
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { id, secret, key: `${API_KEY_PREFIX}${id}_${secret}` };
}

/** What an administrator asks for when creating a key (`POST /api/admin/keys`). */
export const ApiKeyCreateSchema = z
  .object({
    user_id: UserIdSchema,
    role: z.enum(ROLES).default('user'),
    /** A label for people: where the key is used. */
    name: z.string().trim().min(1).max(100).optional(),
    /** Overrides of the role's limits for this key. */
    limits: CallerLimitsOverridesSchema.optional(),
  })
  .strict();
export type ApiKeyCreate = z.input<typeof ApiKeyCreateSchema>;

/** A stored key. */
export const ApiKeyRecordSchema = z.object({
  id: z.string().regex(API_KEY_ID),
  user_id: UserIdSchema,
  role: z.enum(ROLES),
  name: z.string().optional(),
  limits: CallerLimitsOverridesSchema.optional(),
  created_at: z.string(),
  revoked_at: z.string().nullable(),
  secret_sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type ApiKeyRecord = z.infer<typeof ApiKeyRecordSchema>;

/** A key as the admin API shows it: everything but the hash. */
export type ApiKeyView = Omit<ApiKeyRecord, 'secret_sha256'>;
export const toApiKeyView = ({ secret_sha256: _hash, ...view }: ApiKeyRecord): ApiKeyView => view;
