import type { RawData } from 'ws';
import { AppError, LIMITS, WS_CLIENT_MESSAGES, isWsClientMessageType, jsonDepthExceeds, type WsClientMessage } from '@actionedx/shared';
import { parseOrThrow } from '../chat/request-validation.js';

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const byteLength = (data: RawData): number =>
  Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength;

const textOf = (data: RawData): string =>
  Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as ArrayBuffer).toString('utf8');

/**
 * One incoming WebSocket message, parsed with the shared schema of its `type` (`WS_CLIENT_MESSAGES`), or an
 * AppError with the code the client sees. A message without `type` (the seed's client) is a chat turn.
 */
export function parseClientMessage(
  data: RawData,
  isBinary: boolean,
  limitBytes: number,
  maxDepth: number = LIMITS.jsonMaxDepth,
): WsClientMessage {
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
  if (jsonDepthExceeds(value, maxDepth)) {
    throw new AppError('too_deep', `The message nests deeper than ${maxDepth} levels.`, { details: { max_depth: maxDepth } });
  }
  const type = value.type === undefined ? 'message' : value.type;
  if (!isWsClientMessageType(type)) {
    throw new AppError('unknown_message_type', undefined, { details: { field: 'type' } });
  }
  return parseOrThrow(WS_CLIENT_MESSAGES[type], value);
}
