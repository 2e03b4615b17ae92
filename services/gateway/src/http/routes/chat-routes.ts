import { Router } from 'express';
import { principalOf, bindCaller } from '../../auth/principal.js';
import { parseChatRequest } from '../../chat/request-validation.js';
import type { ChatResponder } from '../chat-responder.js';
import { methodNotAllowed } from '../error-mapper.js';
import { jsonBody } from '../json-body.js';
import { TASK_ENDPOINTS } from '../task-requests.js';

/**
 * `POST /api/assistant/chat` and the task endpoints: each a chat request, answered in JSON or SSE. The
 * authenticated user is the request's `user_id` (a body naming another is refused).
 */
export function chatRoutes(deps: { responder: ChatResponder; bodyLimitBytes: number; jsonMaxDepth: number }): Router {
  const { responder } = deps;
  const body = jsonBody(deps.bodyLimitBytes, deps.jsonMaxDepth);
  const router = Router();
  router
    .route('/api/assistant/chat')
    .post(...body, (req, res) => responder.respond(req, res, parseChatRequest(bindCaller(req.body, principalOf(res)))))
    .all(methodNotAllowed('POST'));
  for (const task of TASK_ENDPOINTS) {
    router
      .route(task.path)
      .post(...body, (req, res) => responder.respond(req, res, task.toChatRequest(bindCaller(req.body, principalOf(res)))))
      .all(methodNotAllowed('POST'));
  }
  return router;
}
