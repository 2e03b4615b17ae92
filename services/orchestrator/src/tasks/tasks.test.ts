import { ChatRequestSchema, TASK_TYPES } from '@actionedx/shared';
import { describe, expect, it } from 'vitest';
import { buildPrompt, extractSuggestions, SUGGESTIONS_MARKER } from './build-prompt.js';
import { MODE_PERSONAS, TaskRegistry } from './task-registry.js';

const req = (over: Record<string, unknown> = {}) => ChatRequestSchema.parse({ user_id: 'u1', message: 'How do I start?', ...over });

describe('TaskRegistry', () => {
  it('holds every task type with the seed TTLs', () => {
    const r = new TaskRegistry();
    expect(r.all().map((p) => p.taskType).sort()).toEqual([...TASK_TYPES].sort());
    expect(r.get('strategy_audit').ttlSeconds).toBe(86_400);
    expect(r.get('realtime_tutoring').ttlSeconds).toBe(1_800);
    expect(r.get('collaboration').ttlSeconds).toBe(3_600);
    expect(r.get('framework_alignment').ttlSeconds).toBe(7_200);
    expect(r.get('ethical_assessment').ttlSeconds).toBe(43_200);
  });

  it('takes TTL and model overrides', () => {
    const r = new TaskRegistry({ ttlSeconds: { collaboration: 5 }, model: { strategy_audit: 'mock-1' } });
    expect(r.get('collaboration').ttlSeconds).toBe(5);
    expect(r.get('strategy_audit').model).toBe('mock-1');
    expect(r.get('realtime_tutoring').ttlSeconds).toBe(1_800);
  });
});

describe('buildPrompt', () => {
  const registry = new TaskRegistry();

  it('puts persona, task instructions and the suggestions request in the system message', () => {
    const msgs = buildPrompt(req({ mode: 'oracle', task_type: 'strategy_audit' }), registry.get('strategy_audit'));
    expect(msgs[0]!.role).toBe('system');
    expect(msgs[0]!.content).toContain(MODE_PERSONAS.oracle);
    expect(msgs[0]!.content).toContain('9 pillars');
    expect(msgs[0]!.content).toContain(SUGGESTIONS_MARKER);
    expect(msgs.at(-1)).toEqual({ role: 'user', content: 'How do I start?' });
  });

  it('keeps history in order and context in a stable order', () => {
    const a = buildPrompt(
      req({ history: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }], context: { b: 1, a: 2 } }),
      registry.get('realtime_tutoring'),
    );
    const b = buildPrompt(
      req({ history: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }], context: { a: 2, b: 1 } }),
      registry.get('realtime_tutoring'),
    );
    expect(a).toEqual(b);
    expect(a.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user']);
    expect(a[0]!.content).toContain('{"a":2,"b":1}');
  });

  it('differs by mode', () => {
    const t = registry.get('collaboration');
    expect(buildPrompt(req({ mode: 'ally' }), t)[0]).not.toEqual(buildPrompt(req({ mode: 'strategist' }), t)[0]);
  });
});

describe('extractSuggestions', () => {
  it('reads the lines after the marker', () => {
    expect(extractSuggestions(`Answer text.\n\n${SUGGESTIONS_MARKER}\n- First one\n- Second\nnot a bullet\n- `)).toEqual([
      'First one',
      'Second',
    ]);
  });

  it('gives none without the marker', () => {
    expect(extractSuggestions('- not after a marker')).toEqual([]);
  });
});
