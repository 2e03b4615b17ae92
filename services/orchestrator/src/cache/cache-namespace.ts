import {
  AppError,
  CACHE_KEY_PREFIX,
  CACHE_PREFIX_FORMAT,
  TASK_TYPES,
  parseCachePattern,
  type CacheInvalidateRequest,
} from '@actionedx/shared';

/** What an invalidation deletes: the SCAN pattern, and the test each found key must also pass. */
export interface InvalidationTarget {
  pattern: string;
  matches(key: string): boolean;
}

/**
 * The key layout of one cache namespace:
 * - answers `<prefix>:<task_type>:<sha256 hex>` (the only keys invalidation touches),
 * - hit/miss counters `<prefix>:stats` (a hash),
 * - flight locks `<prefix>:lock:<task_type>:<hash>` and their pub/sub channels `<prefix>:flight:<task_type>:<hash>`.
 */
export class CacheNamespace {
  readonly statsKey: string;
  /** The PSUBSCRIBE pattern covering every flight channel of the namespace. */
  readonly flightPattern: string;
  private readonly answerKey: RegExp;

  constructor(readonly prefix: string = CACHE_KEY_PREFIX) {
    if (!CACHE_PREFIX_FORMAT.test(prefix)) throw new TypeError(`cache prefix must match ${CACHE_PREFIX_FORMAT}, got "${prefix}"`);
    this.statsKey = `${prefix}:stats`;
    this.flightPattern = `${prefix}:flight:*`;
    // Any lower-case task type, so that keys of a type this version does not know can still be invalidated.
    this.answerKey = new RegExp(`^${prefix}:([a-z][a-z0-9_]*):[0-9a-f]{64}$`);
  }

  /** The task type of an answer key; undefined for counters, locks and keys of other namespaces. */
  taskTypeOf(key: string): string | undefined {
    const taskType = this.answerKey.exec(key)?.[1];
    // `lock` and `flight` are reserved segments of the namespace, never task types.
    return taskType === 'lock' || taskType === 'flight' ? undefined : taskType;
  }

  /** Keys come from `cacheKey(parts, prefix)`; anything else is a programming error. */
  assertAnswerKey(key: string): void {
    if (this.taskTypeOf(key) === undefined) throw new TypeError(`not an answer key of cache "${this.prefix}": ${key}`);
  }

  lockKey(key: string): string {
    return `${this.prefix}:lock:${this.rest(key)}`;
  }

  flightChannel(key: string): string {
    return `${this.prefix}:flight:${this.rest(key)}`;
  }

  /** The answer key a flight notification is about; undefined for a foreign channel. */
  keyOfFlightChannel(channel: string): string | undefined {
    const head = `${this.prefix}:flight:`;
    if (!channel.startsWith(head)) return undefined;
    const key = `${this.prefix}:${channel.slice(head.length)}`;
    return this.taskTypeOf(key) === undefined ? undefined : key;
  }

  /**
   * Checks an invalidation request with the shared pattern rules (`cachePatternSchema`), in this namespace:
   * `*` is every answer (`<prefix>:*`); a task type becomes `<prefix>:<task_type>:*`; given both, a key must
   * match both. Counters, locks and channels are never matched, whatever the pattern.
   */
  invalidationTarget(req: CacheInvalidateRequest): InvalidationTarget {
    const { pattern, task_type: taskType } = req;
    if (taskType !== undefined && !(TASK_TYPES as readonly string[]).includes(taskType)) {
      throw new AppError('unknown_task_type', `unknown task type "${String(taskType)}"`);
    }
    if (pattern === undefined) {
      if (taskType === undefined) throw new AppError('validation_failed', 'give a pattern or a task_type');
      return this.target(`${this.prefix}:${taskType}:*`, undefined);
    }
    return this.target(parseCachePattern(pattern, this.prefix), taskType);
  }

  private target(pattern: string, taskType: string | undefined): InvalidationTarget {
    const glob = globToRegExp(pattern);
    return {
      pattern,
      matches: (key) => {
        const type = this.taskTypeOf(key);
        return type !== undefined && (taskType === undefined || type === taskType) && glob.test(key);
      },
    };
  }

  private rest(key: string): string {
    this.assertAnswerKey(key);
    return key.slice(this.prefix.length + 1);
  }
}

/**
 * A pattern already checked by `cachePatternSchema`, read as Redis MATCH reads it: `*` any run, `?` one
 * character; every other allowed character (no `.`, classes or escapes) is literal in a regular expression too.
 */
function globToRegExp(pattern: string): RegExp {
  return new RegExp(`^${pattern.replaceAll('*', '.*').replaceAll('?', '.')}$`, 's');
}
