import { TASK_TYPES, type TaskType, type WorkerPing } from '@actionedx/shared';
import type { OrchestratorAdmin } from '../admin/orchestrator-admin.js';
import { modelNotFound } from './openai-errors.js';

/** `model` values that name a task type: `actionedx/strategy_audit`, ... */
export const TASK_ALIAS_PREFIX = 'actionedx/';
/** The task type a bare model name goes to when several routes use it (the platform's default task type). */
const PREFERRED_TASK: TaskType = 'realtime_tutoring';
/** How long the routes told by a worker are reused before asking again. */
const ROUTES_TTL_MS = 10_000;
/** Wait for a worker to tell its routes (a ping). */
const ROUTES_TIMEOUT_MS = 2_000;

export type RouteModels = NonNullable<WorkerPing['routes']>;

/** One entry of `GET /v1/models`. */
export interface CatalogModel {
  id: string;
  /** For an alias: its task type. */
  task_type?: TaskType;
  /** For an alias: the models its route tries, in order. For a model: the task types whose route uses it. */
  models?: string[];
  task_types?: TaskType[];
}

const isTaskType = (s: string): s is TaskType => (TASK_TYPES as readonly string[]).includes(s);

/**
 * What `model` may be on the OpenAI-compatible API: a task-type alias (`actionedx/<task_type>`), or a model
 * one of the routes uses, which runs as the task type whose route starts with it (the default task type
 * first). The routes live in the orchestrators' configuration: a worker tells them in its ping, kept here
 * for a few seconds.
 */
export class ModelCatalog {
  private cached: { at: number; routes: RouteModels } | undefined;
  private pending: Promise<RouteModels> | undefined;

  constructor(
    private readonly admin: Pick<OrchestratorAdmin, 'ping'>,
    private readonly now: () => number = Date.now,
  ) {}

  /** The task type a request for `model` runs as; `model_not_found` (404) for anything else. */
  async resolve(model: string): Promise<TaskType> {
    if (model.startsWith(TASK_ALIAS_PREFIX)) {
      const task = model.slice(TASK_ALIAS_PREFIX.length);
      if (isTaskType(task)) return task;
      throw modelNotFound(model);
    }
    const routes = await this.routes();
    const using = TASK_TYPES.filter((t) => routes[t]?.includes(model));
    const first = using.filter((t) => routes[t]![0] === model);
    const pick = (ts: TaskType[]): TaskType | undefined => (ts.includes(PREFERRED_TASK) ? PREFERRED_TASK : ts[0]);
    const task = pick(first) ?? pick(using);
    if (task === undefined) throw modelNotFound(model);
    return task;
  }

  /** The aliases, then every model a route uses. Without a worker to ask, the aliases alone. */
  async list(): Promise<CatalogModel[]> {
    const routes = await this.routes().catch((): RouteModels => ({}));
    const aliases = TASK_TYPES.map((t) => ({ id: `${TASK_ALIAS_PREFIX}${t}`, task_type: t, models: routes[t] ?? [] }));
    const models = new Map<string, TaskType[]>();
    for (const t of TASK_TYPES) for (const m of routes[t] ?? []) models.set(m, [...(models.get(m) ?? []), t]);
    return [...aliases, ...[...models].map(([id, tasks]) => ({ id, task_types: tasks }))];
  }

  /** The routes as a worker told them (cached); a worker that tells none means no model name is known. */
  private routes(): Promise<RouteModels> {
    const hit = this.cached;
    if (hit && this.now() - hit.at < ROUTES_TTL_MS) return Promise.resolve(hit.routes);
    this.pending ??= this.admin
      .ping(undefined, ROUTES_TIMEOUT_MS)
      .then(({ worker }) => {
        const routes = worker.routes ?? {};
        this.cached = { at: this.now(), routes };
        return routes;
      })
      .finally(() => (this.pending = undefined));
    return this.pending;
  }
}
