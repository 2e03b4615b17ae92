import { createHash, type Hash } from 'node:crypto';
import { CACHE_KEY_PREFIX, type HistoryTurn, type Mode, type TaskType } from '@actionedx/shared';

/** The namespace of answer keys: `ai_cache:<task_type>:<hash>`, as the seed's invalidation patterns expect. */
export const DEFAULT_CACHE_PREFIX = CACHE_KEY_PREFIX;

/**
 * Version of the key encoding and of the stored entry format. Bumping it moves every request to a fresh
 * key, so code never reads entries written in an older format; the old ones simply expire.
 */
export const CACHE_KEY_VERSION = 1;

/** Everything that shapes an answer: two requests get the same key only when all of it is equal. */
export interface CacheKeyParts {
  task_type: TaskType;
  mode: Mode;
  /** The model the request is routed to: another model gives another answer. */
  model: string;
  /** Version of the prompt template: a new template must not be answered from the old one's cache. */
  prompt_version: string;
  history: readonly HistoryTurn[];
  message: string;
  context: Readonly<Record<string, unknown>>;
  /** Who may share the answer: `global`, or `user:<id>` for answers only their user may see again. */
  scope: string;
  /** What the request asked of the model beyond the defaults (`max_tokens`, `temperature`); absent when nothing. */
  sampling?: Readonly<Record<string, number>> | undefined;
}

/**
 * The cache key of a request: `<prefix>:<task_type>:<sha256 hex>`. The text is hashed exactly as given
 * (no trimming or case folding): the key must change whenever the prompt sent to the model does.
 */
export function cacheKey(parts: CacheKeyParts, prefix: string = DEFAULT_CACHE_PREFIX): string {
  const hash = createHash('sha256');
  const fields = [
    String(CACHE_KEY_VERSION),
    parts.task_type,
    parts.mode,
    parts.model,
    parts.prompt_version,
    // Only role and content reach the model, so nothing else in a turn may split the cache.
    canonicalJson(parts.history.map((t) => ({ role: t.role, content: t.content }))),
    parts.message,
    canonicalJson(parts.context),
    parts.scope,
  ];
  // Appended only when set, so the keys of requests that ask for nothing particular stay what they were.
  if (parts.sampling !== undefined && Object.keys(parts.sampling).length > 0) fields.push(canonicalJson(parts.sampling));
  for (const field of fields) writeField(hash, field);
  return `${prefix}:${parts.task_type}:${hash.digest('hex')}`;
}

/**
 * Length-prefixed, so no shift of characters across a field boundary gives the same bytes. Each field is
 * JSON-quoted first: lone UTF-16 surrogates become escapes instead of collapsing into U+FFFD.
 */
function writeField(hash: Hash, field: string): void {
  const bytes = Buffer.from(JSON.stringify(field), 'utf8');
  hash.update(`${bytes.length}:`);
  hash.update(bytes);
}

/**
 * JSON with object keys sorted at every depth, so `{a,b}` and `{b,a}` encode alike. Values follow
 * `JSON.stringify` (toJSON honoured, undefined members dropped, undefined in arrays → null).
 */
export function canonicalJson(value: unknown): string {
  const v = hasToJson(value) ? value.toJSON() : value;
  if (Array.isArray(v)) return `[${v.map((item) => canonicalJson(item === undefined ? null : item)).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const members = Object.keys(v)
      .sort()
      .filter((k) => isJsonValue((v as Record<string, unknown>)[k]))
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`);
    return `{${members.join(',')}}`;
  }
  // Primitives: JSON.stringify is already canonical (and throws on a BigInt, as it should).
  return JSON.stringify(v) ?? 'null';
}

const isJsonValue = (v: unknown): boolean => v !== undefined && typeof v !== 'function' && typeof v !== 'symbol';

const hasToJson = (v: unknown): v is { toJSON(): unknown } =>
  v !== null && typeof v === 'object' && typeof (v as { toJSON?: unknown }).toJSON === 'function';
