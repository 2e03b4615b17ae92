import { z } from 'zod';
import { AppError } from '../errors.js';
import { FrameSchema, type Frame } from './frames.js';

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

const FrameListSchema = z.union([FrameSchema.transform((f) => [f]), z.array(FrameSchema).min(1)]);

/** Frames made in the same turn travel as one message: a JSON array (one frame alone stays an object). */
export const encodeFrames = (frames: readonly Frame[]): Uint8Array => encodeJson(frames.length === 1 ? frames[0] : frames);
/** A message of one frame or of several, in order. */
export const decodeFrames = (data: Uint8Array): Frame[] => decodeJson(FrameListSchema, data);
