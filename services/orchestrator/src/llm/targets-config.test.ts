import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, TASK_TYPES, type TaskType } from '@actionedx/shared';
import { loadOrchestratorConfig } from '../config.js';
import { primaryModels, resolveRouting, TARGET_DEFAULTS, type EnvRouting } from './targets-config.js';

const models = { ...Object.fromEntries(TASK_TYPES.map((t) => [t, 'gpt-4o'])), realtime_tutoring: 'gpt-4o-mini' } as Record<TaskType, string>;
const base: EnvRouting = { models, apiKey: 'sk-env', timeoutMs: 60_000, maxRetries: 2 };

const problemsOf = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
};

describe('resolveRouting', () => {
  it('keeps today\'s behaviour by default: one target per model at OPENAI_BASE_URL, with the SDK\'s timeout and retries', () => {
    const r = resolveRouting({}, base);
    expect(r.source).toBe('env');
    expect(Object.keys(r.targets).sort()).toEqual(['gpt-4o', 'gpt-4o-mini']);
    expect(r.targets['gpt-4o']).toMatchObject({ baseUrl: undefined, apiKey: 'sk-env', maxRetries: 2, firstTokenTimeoutMs: 60_000, requestTimeoutMs: 60_000 });
    expect(r.routes.realtime_tutoring).toEqual({ targets: [{ name: 'gpt-4o-mini', weight: undefined }], hedgeAfterMs: undefined, qualityFallback: true });
    expect(primaryModels(r)).toEqual(models);
  });

  it('reads a YAML file: targets, defaults, routes with weights and a hedge; keys from the named variables', () => {
    const dir = mkdtempSync(join(tmpdir(), 'targets-'));
    const file = join(dir, 'targets.yaml');
    writeFileSync(
      file,
      [
        'defaults: { stall_timeout_ms: 9000, breaker: { failures: 3 } }',
        'targets:',
        '  primary: { base_url: "https://one.example/v1", model: gpt-4o, api_key_env: ONE_KEY, max_concurrency: 8 }',
        '  backup: { base_url: "https://two.example/v1", model: gpt-4.1, api_key_env: TWO_KEY, breaker: { cooldown_ms: 5000 } }',
        'routes:',
        '  strategy_audit:',
        '    targets: [{ target: primary, weight: 3 }, { target: backup, weight: 1 }]',
        '    hedge_after_ms: 2500',
      ].join('\n'),
    );
    const r = resolveRouting({ MODEL_TARGETS_FILE: file, ONE_KEY: 'k1', TWO_KEY: 'k2' }, base);
    expect(r.source).toBe('file');
    expect(r.targets.primary).toMatchObject({ apiKey: 'k1', maxConcurrency: 8, stallTimeoutMs: 9000, breaker: { failures: 3, cooldownMs: TARGET_DEFAULTS.breaker.cooldownMs } });
    expect(r.targets.backup).toMatchObject({ apiKey: 'k2', model: 'gpt-4.1', breaker: { failures: 3, cooldownMs: 5000 } });
    expect(r.routes.strategy_audit).toEqual({
      targets: [
        { name: 'primary', weight: 3 },
        { name: 'backup', weight: 1 },
      ],
      hedgeAfterMs: 2500,
      qualityFallback: true,
    });
    // Task types the file leaves out keep their default target.
    expect(r.routes.collaboration.targets).toEqual([{ name: 'gpt-4o', weight: undefined }]);
    expect(r.targets['gpt-4o']).toMatchObject({ apiKey: 'sk-env' });
  });

  it('lists every problem of a file together', () => {
    const problems = problemsOf(() =>
      resolveRouting(
        {
          MODEL_TARGETS: JSON.stringify({
            targets: { a: { model: 'm', api_key_env: 'MISSING_KEY' }, b: { model: 'n', base_url: 'ftp://x' } },
            routes: { strategy_audit: { targets: ['a', 'ghost', 'a'] } },
          }),
        },
        base,
      ),
    );
    expect(problems.some((p) => p.includes('targets.b.base_url'))).toBe(true);
    const second = problemsOf(() =>
      resolveRouting(
        { MODEL_TARGETS: JSON.stringify({ targets: { a: { model: 'm', api_key_env: 'MISSING_KEY' } }, routes: { strategy_audit: { targets: ['a', 'ghost', 'a'] } } }) },
        base,
      ),
    );
    expect(second).toEqual([
      'MODEL_TARGETS targets.a.api_key_env: MISSING_KEY is not set',
      'MODEL_TARGETS routes.strategy_audit.targets.1: unknown target "ghost"',
      'MODEL_TARGETS routes.strategy_audit.targets.2: "a" is listed twice',
    ]);
  });

  it('refuses both sources at once, unreadable files and bad JSON', () => {
    expect(problemsOf(() => resolveRouting({ MODEL_TARGETS_FILE: '/x', MODEL_TARGETS: '{}' }, base))[0]).toMatch(/not both/);
    expect(problemsOf(() => resolveRouting({ MODEL_TARGETS_FILE: '/nonexistent/targets.yaml' }, base))[0]).toMatch(/cannot be read \(ENOENT\)/);
    expect(problemsOf(() => resolveRouting({ MODEL_TARGETS: '{nope' }, base))[0]).toMatch(/not valid JSON/);
  });

  it('is reported with every other configuration problem', () => {
    const problems = problemsOf(() => loadOrchestratorConfig({ OPENAI_TIMEOUT_MS: 'soon', MODEL_TARGETS: '{"targets":{"a":{}}}' }));
    expect(problems.some((p) => p.startsWith('OPENAI_TIMEOUT_MS'))).toBe(true);
    expect(problems.some((p) => p.startsWith('MODEL_TARGETS targets.a.model'))).toBe(true);
  });

  it('makes the route\'s first model the task\'s model (its cache key)', () => {
    const cfg = loadOrchestratorConfig({
      MODEL_TARGETS: JSON.stringify({ targets: { fast: { model: 'gpt-4.1-mini' } }, routes: { realtime_tutoring: { targets: ['fast'] } } }),
      MODEL_ROUTE_STRATEGY_AUDIT: 'gpt-4.1',
    });
    expect(cfg.modelRoutes).toMatchObject({ realtime_tutoring: 'gpt-4.1-mini', strategy_audit: 'gpt-4.1' });
  });
});
