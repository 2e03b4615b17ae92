import { ConfigError, TASK_TYPES, type TaskType } from '@actionedx/shared';

/** Who may be answered from one cached entry: everyone, or only the user who caused it. */
export type Sharing = 'global' | 'user';

/** The sharing scope as it enters the cache key. */
export type SharingScope = 'global' | `user:${string}`;

/**
 * Default sharing per task type. The key covers the whole request, so a shared entry can only serve a
 * request identical to the one that produced it; what sharing still gives away is that such a request was
 * made (`cached: true`, a fast answer), and any per-user data the pipeline adds to the prompt outside the
 * request. So: share where questions are generic and repeated, keep per user where they are about one
 * person or organisation.
 */
export const DEFAULT_SHARING: Readonly<Record<TaskType, Sharing>> = {
  // An audit reads one organisation's strategy: sensitive, rarely repeated word for word by another user.
  strategy_audit: 'user',
  // Same question, same explanation: the task where a shared cache pays most, with generic content.
  realtime_tutoring: 'global',
  // About a team's own work and people: private, and the answers depend on who asks.
  collaboration: 'user',
  // Mapping onto the tri-core framework is shared reference material; repeated course prompts hit.
  framework_alignment: 'global',
  // House of hearts weighs a personal ethical situation: even knowing it was asked is sensitive.
  ethical_assessment: 'user',
};

/** The sharing scope of one user's request as it enters the cache key. */
export function sharingScope(sharing: Sharing, userId: string): SharingScope {
  return sharing === 'global' ? 'global' : `user:${userId}`;
}

/** Sharing per task type with `CACHE_SHARING_<TASK_TYPE>=global|user` applied; every bad value is reported. */
export function resolveSharing(env: Readonly<Record<string, string | undefined>>): Record<TaskType, Sharing> {
  const sharing = { ...DEFAULT_SHARING };
  const problems: string[] = [];
  for (const taskType of TASK_TYPES) {
    const name = `CACHE_SHARING_${taskType.toUpperCase()}`;
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    if (raw === 'global' || raw === 'user') sharing[taskType] = raw;
    else problems.push(`${name}: must be "global" or "user", got "${raw}"`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return sharing;
}
