import type { Request, Response } from 'express';
import { AppError, ChatRequestSchema } from '@actionedx/shared';

/**
 * Who is calling, for the job endpoints: the one place identity is read, so that authentication (JWT, API keys)
 * replaces this function and nothing else. Until then the caller names themselves: `user_id` in the JSON body of
 * a POST, `?user_id=` on GET and DELETE (and the SSE stream). Ownership checks compare against what this returns.
 */
export function callerOf(req: Request, _res: Response): string {
  const fromBody = req.method === 'POST' && typeof req.body === 'object' && req.body !== null ? (req.body as { user_id?: unknown }).user_id : undefined;
  const raw = fromBody ?? req.query.user_id;
  if (raw === undefined) {
    throw new AppError('validation_failed', 'user_id: required (in the body of a POST, ?user_id= otherwise).', { details: { field: 'user_id' } });
  }
  const parsed = ChatRequestSchema.shape.user_id.safeParse(raw);
  if (!parsed.success) {
    throw new AppError('validation_failed', 'user_id may only hold letters, digits and _ . : @ - (at most 128).', { details: { field: 'user_id' } });
  }
  return parsed.data;
}
