import { describe, expect, it } from 'vitest';
import { LIMITS } from './chat.js';
import {
  WS_CLIENT_MESSAGES,
  WsChatTurnSchema,
  WsClientMessageSchema,
  WsServerMessageSchema,
  isWsClientMessageType,
  type WsServerMessage,
} from './ws.js';

describe('WebSocket client messages', () => {
  it("reads the seed client's message, without type, as a chat turn with the socket's defaults left open", () => {
    const seed = {
      user_id: 'user-456',
      message: 'Help me with 9-Pillar audit',
      mode: 'strategist',
      context: { current_track: 'innovation-foundations' },
    };
    expect(WsChatTurnSchema.parse(seed)).toEqual({
      ...seed,
      task_type: 'realtime_tutoring',
      history: [],
      use_cache: true,
    });
    expect(WsChatTurnSchema.parse({ message: 'hi' })).not.toHaveProperty('mode');
    expect(WsChatTurnSchema.parse({ type: 'chat', message: 'hi' })).toMatchObject({ type: 'chat' });
    expect(WsChatTurnSchema.parse({ message: 'hi', session_id: 'elsewhere' })).not.toHaveProperty('session_id');
  });

  it('knows each message type, and only those', () => {
    expect(Object.keys(WS_CLIENT_MESSAGES).sort()).toEqual(['cancel', 'chat', 'message', 'mode_switch', 'ping', 'resume', 'typing']);
    for (const type of ['dance', 'toString', '__proto__', 5, null]) expect(isWsClientMessageType(type), String(type)).toBe(false);
    expect(WS_CLIENT_MESSAGES.typing.parse({ type: 'typing' })).toEqual({ type: 'typing', is_typing: true });
    expect(WS_CLIENT_MESSAGES.typing.parse({ type: 'typing', is_typing: false })).toEqual({ type: 'typing', is_typing: false });
    expect(WS_CLIENT_MESSAGES.mode_switch.safeParse({ type: 'mode_switch', mode: 'pirate' }).success).toBe(false);
  });

  it.each([
    [{ message: '' }, 'message'],
    [{ message: 'x'.repeat(LIMITS.messageMaxChars + 1) }, 'message'],
    [{ message: 'hi', user_id: 'a b' }, 'user_id'],
    [{ message: 'hi', mode: 'pirate' }, 'mode'],
    [{ message: 'hi', type: 'ping' }, 'type'],
    [{ type: 'typing', is_typing: 'yes' }, 'is_typing'],
  ])('refuses %j, naming %s', (input, field) => {
    const schema = 'type' in input && input.type === 'typing' ? WS_CLIENT_MESSAGES.typing : WsChatTurnSchema;
    const parsed = schema.safeParse(input);
    expect(parsed.success).toBe(false);
    expect(parsed.error!.issues[0]!.path[0]).toBe(field);
  });

  it('has one union for documents and types', () => {
    expect(WsClientMessageSchema.safeParse({ type: 'cancel' }).success).toBe(true);
    expect(WsClientMessageSchema.safeParse({ type: 'dance' }).success).toBe(false);
  });
});

describe('WebSocket server messages', () => {
  const now = new Date().toISOString();
  const frames: WsServerMessage[] = [
    { type: 'connected', session_id: 'team.a:u@x', message: 'Connected to ActionEDx assistant', mode: 'ally', timestamp: now },
    { type: 'stream_start', request_id: 'r1' },
    { type: 'stream_chunk', content: 'Hel', seq: 0 },
    { type: 'stream_reset', request_id: 'r1' },
    { type: 'stream_end', request_id: 'r1' },
    {
      type: 'response',
      response: 'Hello',
      suggestions: [],
      model: 'm',
      mode: 'ally',
      task_type: 'collaboration',
      cached: false,
      request_id: 'r1',
      usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
      cost_usd: 0,
      latency_ms: 3,
    },
    { type: 'typing', session_id: 's', user_id: null, is_typing: true, timestamp: now },
    { type: 'system', message: 'Mode switched to ally.', mode: 'ally' },
    { type: 'system', message: 'No turn is running.' },
    { type: 'pong', timestamp: now },
    { type: 'error', code: 'busy', message: 'A turn is already streaming on this session.', retryable: true, request_id: 'r1' },
  ];

  it.each(frames)('parses a $type message', (frame) => {
    expect(WsServerMessageSchema.parse(frame)).toEqual(frame);
  });

  it.each([
    { type: 'stream_chunk', content: 'x' },
    { type: 'stream_chunk', content: 'x', seq: -1 },
    { type: 'error', code: 'no_such_code', message: 'x', retryable: false },
    { type: 'connected', session_id: 'x'.repeat(129), message: 'm', mode: 'ally', timestamp: now },
    { type: 'hello' },
  ])('refuses %j', (frame) => {
    expect(WsServerMessageSchema.safeParse(frame).success).toBe(false);
  });
});
