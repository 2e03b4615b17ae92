import { describe, expect, it } from 'vitest';
import { ConfigError } from '@actionedx/shared';
import { DEFAULT_TTLS, resolveTtls } from './ttl.js';

describe('resolveTtls', () => {
  it('keeps the seed TTLs by default', () => {
    expect(resolveTtls({})).toEqual({
      strategy_audit: 86_400,
      realtime_tutoring: 1_800,
      collaboration: 3_600,
      framework_alignment: 7_200,
      ethical_assessment: 43_200,
    });
  });

  it('applies CACHE_TTL_<TASK_TYPE> in seconds; an empty value means unset', () => {
    expect(resolveTtls({ CACHE_TTL_REALTIME_TUTORING: '60', CACHE_TTL_STRATEGY_AUDIT: '' })).toEqual({
      ...DEFAULT_TTLS,
      realtime_tutoring: 60,
    });
  });

  it('reports every bad value at once', () => {
    const env = { CACHE_TTL_COLLABORATION: '0', CACHE_TTL_ETHICAL_ASSESSMENT: '1.5', CACHE_TTL_STRATEGY_AUDIT: 'soon' };
    try {
      resolveTtls(env);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems).toHaveLength(3);
    }
  });
});
