import { Router } from 'express';
import { parseChatRequest } from '../../chat/request-validation.js';
import type { ChatResponder } from '../chat-responder.js';
import { methodNotAllowed } from '../error-mapper.js';
import { jsonBody } from '../json-body.js';
import { TASK_ENDPOINTS } from '../task-requests.js';

/** `POST /api/assistant/chat` and the task endpoints: each a chat request, answered in JSON or SSE. */
export function chatRoutes(deps: { responder: ChatResponder; bodyLimitBytes: number }): Router {
  const { responder } = deps;
  const body = jsonBody(deps.bodyLimitBytes);
  const router = Router();
  router
    .route('/api/assistant/chat')
    .post(...body, (req, res) => responder.respond(req, res, parseChatRequest(req.body)))
    .all(methodNotAllowed('POST'));
  for (const task of TASK_ENDPOINTS) {
    router
      .route(task.path)
      .post(...body, (req, res) => responder.respond(req, res, task.toChatRequest(req.body)))
      .all(methodNotAllowed('POST'));
  }
  return router;
}
