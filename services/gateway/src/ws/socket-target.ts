import { AppError, LIMITS, SessionIdSchema, UserIdSchema } from '@actionedx/shared';

/** What a WebSocket URL names: `/ws/assistant/<session_id>?user_id=<user_id>`. */
export interface SocketTarget {
  sessionId: string;
  userId: string | undefined;
}

const ASSISTANT_PATH = /^\/ws\/assistant\/([^/]+)\/?$/;

/** Parse an upgrade URL; `not_found` for another path, `validation_failed` for unsafe ids. */
export function parseSocketTarget(url: string | undefined): SocketTarget {
  const parsed = new URL(url ?? '/', 'http://gateway.invalid');
  const match = ASSISTANT_PATH.exec(parsed.pathname);
  if (match === null) throw new AppError('not_found', 'WebSocket endpoint: /ws/assistant/<session_id>.');
  let sessionId: string;
  try {
    sessionId = decodeURIComponent(match[1]!);
  } catch {
    sessionId = '';
  }
  if (!SessionIdSchema.safeParse(sessionId).success) {
    throw new AppError(
      'validation_failed',
      `session_id must be 1-${LIMITS.sessionIdMaxChars} letters, digits or _ . : @ -.`,
      { details: { field: 'session_id' } },
    );
  }
  const userId = parsed.searchParams.get('user_id') ?? undefined;
  if (userId !== undefined && !UserIdSchema.safeParse(userId).success) {
    throw new AppError(
      'validation_failed',
      `user_id must be 1-${LIMITS.userIdMaxChars} letters, digits or _ . : @ -.`,
      { details: { field: 'user_id' } },
    );
  }
  return { sessionId, userId };
}
