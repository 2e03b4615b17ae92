import type { z } from 'zod';
import { AppError, ChatRequestSchema, type ChatRequest, type ErrorCode } from '@actionedx/shared';

type Issue = z.core.$ZodIssue;

/** The specific code a client can act on, when the issue has one. */
function codeOf(issue: Issue): ErrorCode {
  const field = issue.path[0];
  if (field === 'mode') return 'unknown_mode';
  if (field === 'task_type') return 'unknown_task_type';
  if (field === 'message' && issue.path.length === 1) {
    if (issue.code === 'too_big') return 'message_too_long';
    if (issue.code === 'custom') return 'message_empty';
  }
  return 'validation_failed';
}

const fieldOf = (issue: Issue): string => issue.path.map(String).join('.') || '(body)';

/** A failed parse as one AppError: the first issue decides the code, every issue is in the details. */
export function validationError(error: z.ZodError): AppError {
  const first = error.issues[0];
  if (first === undefined) return new AppError('validation_failed');
  const code = codeOf(first);
  const field = fieldOf(first);
  const message = code === 'validation_failed' ? `${field}: ${first.message}` : undefined;
  return new AppError(code, message, {
    details: { field, issues: error.issues.map((i) => ({ field: fieldOf(i), message: i.message })) },
  });
}

/** Parse `input` with `schema` or throw the matching AppError. */
export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const parsed = schema.safeParse(input);
  if (!parsed.success) throw validationError(parsed.error);
  return parsed.data;
}

/** A chat request from any transport, with defaults applied. */
export const parseChatRequest = (input: unknown): ChatRequest => parseOrThrow(ChatRequestSchema, input);
