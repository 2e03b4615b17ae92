import type { z } from 'zod';
import { AppError } from '../errors.js';
import { FrameSchema, type ChunkFrame, type Frame } from './frames.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** JSON to bytes: what crosses the bus, in-process as well as on NATS. */
export function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

/** Bytes to a value checked against `schema`; a malformed message is an `invalid_message` error. */
export function decodeJson<S extends z.ZodType>(schema: S, data: Uint8Array): z.output<S> {
  let raw: unknown;
  try {
    raw = JSON.parse(decoder.decode(data));
  } catch {
    throw new AppError('invalid_message', 'message is not JSON');
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new AppError('invalid_message', parsed.error.issues[0]?.message ?? 'invalid message');
  return parsed.data;
}

export const encodeFrame = (frame: Frame): Uint8Array => encodeJson(frame);
export const decodeFrame = (data: Uint8Array): Frame => decodeJson(FrameSchema, data);

/** Frames made in the same turn travel as one message: a JSON array (one frame alone stays an object). */
export const encodeFrames = (frames: readonly Frame[]): Uint8Array => encodeJson(frames.length === 1 ? frames[0] : frames);

/** A message of one frame or of several, in order; anything malformed is an `invalid_message` error. */
export function decodeFrames(data: Uint8Array): Frame[] {
  let raw: unknown;
  try {
    raw = JSON.parse(decoder.decode(data));
  } catch {
    throw new AppError('invalid_message', 'message is not JSON');
  }
  const list = Array.isArray(raw) ? raw : [raw];
  if (list.length === 0) throw new AppError('invalid_message', 'no frames');
  return list.map(checkFrame);
}

/** Chunks are most of the traffic: their few fields are checked by hand, every other frame by its schema. */
function checkFrame(value: unknown): Frame {
  const f = value as Record<string, unknown> | null;
  if (
    f !== null &&
    typeof f === 'object' &&
    f.type === 'chunk' &&
    typeof f.request_id === 'string' &&
    typeof f.delta === 'string' &&
    Number.isSafeInteger(f.attempt) &&
    (f.attempt as number) >= 0 &&
    Number.isSafeInteger(f.seq) &&
    (f.seq as number) >= 0 &&
    (f.delivery === undefined || (Number.isSafeInteger(f.delivery) && (f.delivery as number) > 0))
  ) {
    const chunk: ChunkFrame = { type: 'chunk', request_id: f.request_id, attempt: f.attempt as number, seq: f.seq as number, delta: f.delta };
    if (f.delivery !== undefined) chunk.delivery = f.delivery as number;
    return chunk;
  }
  const parsed = FrameSchema.safeParse(value);
  if (!parsed.success) throw new AppError('invalid_message', parsed.error.issues[0]?.message ?? 'invalid frame');
  return parsed.data;
}
