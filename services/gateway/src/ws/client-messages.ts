import type { RawData } from 'ws';
import { AppError, MODES, type Mode } from '@actionedx/shared';

/** What a client can send on the assistant socket, once the JSON is read. */
export type ClientMessage =
  | { type: 'turn'; body: Record<string, unknown> }
  | { type: 'ping' }
  | { type: 'typing'; isTyping: boolean }
  | { type: 'mode_switch'; mode: Mode }
  | { type: 'cancel' };

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const byteLength = (data: RawData): number =>
  Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength;

const textOf = (data: RawData): string =>
  Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as ArrayBuffer).toString('utf8');

/**
 * One incoming WebSocket message as a ClientMessage, or an AppError with the code the client sees.
 * A message without `type` (the seed's client) or with `type: "message"` is a chat turn.
 */
export function parseClientMessage(data: RawData, isBinary: boolean, limitBytes: number): ClientMessage {
  if (isBinary) throw new AppError('binary_frame');
  if (byteLength(data) > limitBytes) {
    throw new AppError('payload_too_large', `A message may hold at most ${limitBytes} bytes.`);
  }
  let value: unknown;
  try {
    value = JSON.parse(textOf(data));
  } catch {
    throw new AppError('invalid_json', 'The message is not valid JSON.');
  }
  if (!isPlainObject(value)) throw new AppError('invalid_message', 'Send a JSON object.');
  const type = value.type;
  switch (type) {
    case undefined:
    case 'message':
    case 'chat': {
      const { type: _type, ...body } = value;
      return { type: 'turn', body };
    }
    case 'ping':
      return { type: 'ping' };
    case 'cancel':
      return { type: 'cancel' };
    case 'typing':
      return { type: 'typing', isTyping: value.is_typing !== false };
    case 'mode_switch': {
      const mode = value.mode;
      if (typeof mode !== 'string' || !(MODES as readonly string[]).includes(mode)) {
        throw new AppError('unknown_mode', `Unknown mode; use one of: ${MODES.join(', ')}.`, { details: { field: 'mode' } });
      }
      return { type: 'mode_switch', mode: mode as Mode };
    }
    default:
      throw new AppError('unknown_message_type', undefined, { details: { field: 'type' } });
  }
}
