import type { Request, Response } from 'express';
import { userIdOf } from '../auth/principal.js';

/**
 * Who is calling, for the job endpoints: the authenticated user (in open mode, the one the request names:
 * `user_id` in the body of a POST, `?user_id=` otherwise). Ownership checks compare against what this returns.
 */
export const callerOf = (req: Request, res: Response): string => userIdOf(req, res);
