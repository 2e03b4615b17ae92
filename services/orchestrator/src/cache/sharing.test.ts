import { describe, expect, it } from 'vitest';
import { ConfigError } from '@actionedx/shared';
import { DEFAULT_SHARING, resolveSharing, sharingScopeFor } from './sharing.js';

describe('sharingScopeFor', () => {
  it('shares generic task types and keeps personal ones per user', () => {
    expect(sharingScopeFor('realtime_tutoring', 'alice')).toBe('global');
    expect(sharingScopeFor('framework_alignment', 'alice')).toBe('global');
    expect(sharingScopeFor('strategy_audit', 'alice')).toBe('user:alice');
    expect(sharingScopeFor('collaboration', 'alice')).toBe('user:alice');
    expect(sharingScopeFor('ethical_assessment', 'alice')).toBe('user:alice');
  });

  it('applies overrides', () => {
    expect(sharingScopeFor('realtime_tutoring', 'bob', { realtime_tutoring: 'user' })).toBe('user:bob');
    expect(sharingScopeFor('strategy_audit', 'bob', { strategy_audit: 'global' })).toBe('global');
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
