import { describe, expect, it } from 'vitest';
import { ConfigError } from '@actionedx/shared';
import { DEFAULT_SHARING, resolveSharing, sharingScope } from './sharing.js';
import { TaskRegistry } from './task-registry.js';

describe('sharing per task type', () => {
  const scope = (registry: TaskRegistry, taskType: Parameters<TaskRegistry['get']>[0], user: string) =>
    sharingScope(registry.get(taskType).sharing, user);

  it('shares generic task types and keeps personal ones per user', () => {
    const r = new TaskRegistry();
    expect(scope(r, 'realtime_tutoring', 'alice')).toBe('global');
    expect(scope(r, 'framework_alignment', 'alice')).toBe('global');
    expect(scope(r, 'strategy_audit', 'alice')).toBe('user:alice');
    expect(scope(r, 'collaboration', 'alice')).toBe('user:alice');
    expect(scope(r, 'ethical_assessment', 'alice')).toBe('user:alice');
  });

  it('applies overrides', () => {
    const r = new TaskRegistry({ sharing: { realtime_tutoring: 'user', strategy_audit: 'global' } });
    expect(scope(r, 'realtime_tutoring', 'bob')).toBe('user:bob');
    expect(scope(r, 'strategy_audit', 'bob')).toBe('global');
  });
});

describe('resolveSharing', () => {
  it('reads CACHE_SHARING_<TASK_TYPE> and leaves the rest at the defaults', () => {
    expect(resolveSharing({ CACHE_SHARING_REALTIME_TUTORING: 'user', CACHE_SHARING_COLLABORATION: '' })).toEqual({
      ...DEFAULT_SHARING,
      realtime_tutoring: 'user',
    });
  });

  it('reports every bad value at once', () => {
    try {
      resolveSharing({ CACHE_SHARING_STRATEGY_AUDIT: 'team', CACHE_SHARING_COLLABORATION: 'all' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems).toHaveLength(2);
    }
  });
});
