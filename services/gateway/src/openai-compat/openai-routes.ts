import { Router, type Request } from 'express';
import type { Logger } from '@actionedx/shared';
import type { Admission } from '../admission/admission.js';
import type { Authenticator } from '../auth/authenticator.js';
import { authenticate } from '../auth/http-auth.js';
import { principalOf } from '../auth/principal.js';
import type { ChatDispatcher } from '../chat/chat-dispatcher.js';
import { methodNotAllowed } from '../http/error-mapper.js';
import { jsonBody } from '../http/json-body.js';
import { bypassesCache, parseCompletionBody, toChatRequest } from './completion-request.js';
import { CompletionResponder } from './completion-responder.js';
import { TASK_ALIAS_PREFIX, type CatalogModel, type ModelCatalog } from './model-catalog.js';
import { modelNotFound, openAiErrorHandler, unknownUrl } from './openai-errors.js';

export interface OpenAiRoutesDeps {
  dispatcher: ChatDispatcher;
  admission: Admission;
  authenticator: Authenticator;
  catalog: ModelCatalog;
  logger: Logger;
  bodyLimitBytes: number;
  jsonMaxDepth: number;
}

/** `created` of every model entry: when this gateway started (the routes have no date of their own). */
const STARTED_S = Math.floor(Date.now() / 1000);

const modelEntry = (m: CatalogModel) => ({
  id: m.id,
  object: 'model',
  created: STARTED_S,
  owned_by: m.id.startsWith(TASK_ALIAS_PREFIX) ? 'actionedx' : 'actionedx-routing',
  actionedx: m.task_type ? { task_type: m.task_type, models: m.models ?? [] } : { task_types: m.task_types ?? [] },
});

/** `/v1/models/{id}`: ids hold a slash (`actionedx/strategy_audit`), sent raw or encoded. */
const modelIdOf = (req: Request): string => {
  const raw = (req.params as { id?: string | string[] }).id;
  return Array.isArray(raw) ? raw.join('/') : (raw ?? '');
};

/**
 * The OpenAI-compatible API: `POST /v1/chat/completions`, `GET /v1/models`, `GET /v1/models/{id}`. Every
 * route authenticates itself (so a refused call is still counted under its route) with the gateway's
 * authenticator, and every error leaves in OpenAI's shape.
 */
export function openAiRoutes(deps: OpenAiRoutesDeps): Router {
  const { catalog } = deps;
  const auth = authenticate(deps.authenticator);
  const body = jsonBody(deps.bodyLimitBytes, deps.jsonMaxDepth);
  const responder = new CompletionResponder(deps.dispatcher, deps.admission);
  const router = Router();
  router
    .route('/v1/chat/completions')
    .post(auth, ...body, async (req, res) => {
      const completion = parseCompletionBody(req.body);
      const taskType = await catalog.resolve(completion.model);
      const request = toChatRequest(completion, { taskType, principal: principalOf(res), useCache: !bypassesCache(req.headers) });
      await responder.respond(res, request, {
        stream: completion.stream === true,
        includeUsage: completion.stream_options?.include_usage === true,
        model: completion.model,
      });
    })
    .all(methodNotAllowed('POST'));
  router
    .route('/v1/models')
    .get(auth, async (_req, res) => {
      res.json({ object: 'list', data: (await catalog.list()).map(modelEntry) });
    })
    .all(methodNotAllowed('GET'));
  router
    .route('/v1/models/*id')
    .get(auth, async (req, res) => {
      const id = modelIdOf(req);
      const found = (await catalog.list()).find((m) => m.id === id);
      if (!found) throw modelNotFound(id);
      res.json(modelEntry(found));
    })
    .all(methodNotAllowed('GET'));
  router.all('/v1/*rest', unknownUrl);
  router.use(openAiErrorHandler(deps.logger));
  return router;
}
