/**
 * Which NATS, Redis and MongoDB the integration tests use: a pure decision, so that it is unit-tested
 * without servers or a Docker engine. `integration-global-setup.ts` does the I/O around it.
 *
 * For each server, in order: its URL from the environment when given; else a container started with
 * testcontainers when a Docker engine answers; else the machine's own server (Redis 127.0.0.1:6379,
 * NATS 127.0.0.1:4222), and for MongoDB none (its contract suite then skips).
 * `TEST_SERVERS=local` never starts containers; `TEST_SERVERS=containers` requires a Docker engine.
 */

export type ServerName = 'nats' | 'redis' | 'mongo';
export type ServerSource = 'env' | 'container' | 'local' | 'none';
export type ServersMode = 'auto' | 'containers' | 'local';

export interface ServerSpec {
  /** Its name in messages. */
  label: string;
  /** The environment variable the tests read. */
  envVar: 'NATS_URL' | 'REDIS_URL' | 'MONGO_URL';
  /** URL schemes the variable may use. */
  schemes: readonly string[];
  /** The machine's own server, used without Docker; undefined: there is none (MongoDB). */
  local?: string;
  /** The image docker-compose.yml runs for it (test/setup/server-plan.test.ts keeps them equal). */
  image: string;
  /** The port the server listens on inside its container. */
  port: number;
}

export const SERVERS: Readonly<Record<ServerName, ServerSpec>> = {
  nats: { label: 'NATS', envVar: 'NATS_URL', schemes: ['nats:', 'tls:'], local: 'nats://127.0.0.1:4222', image: 'nats:2.9-alpine', port: 4222 },
  redis: { label: 'Redis', envVar: 'REDIS_URL', schemes: ['redis:', 'rediss:'], local: 'redis://127.0.0.1:6379', image: 'redis:7-alpine', port: 6379 },
  mongo: { label: 'MongoDB', envVar: 'MONGO_URL', schemes: ['mongodb:', 'mongodb+srv:'], image: 'mongo:7', port: 27017 },
};

export const SERVER_NAMES = Object.keys(SERVERS) as ServerName[];

export interface ServerChoice {
  name: ServerName;
  envVar: ServerSpec['envVar'];
  source: ServerSource;
  /** Set for env and local; a container's URL is known only once it runs. */
  url?: string;
  /** One line for the test log: why this source. */
  why: string;
}

export interface ServerRequest {
  mode: ServersMode;
  /** URLs given in the environment (empty values count as not given). */
  given: Partial<Record<ServerName, string>>;
}

export class TestServersConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`bad test server configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'TestServersConfigError';
  }
}

/** Reads TEST_SERVERS and the server URLs; every bad variable is reported at once. */
export function readServerRequest(env: Readonly<Record<string, string | undefined>>): ServerRequest {
  const problems: string[] = [];
  const rawMode = (env.TEST_SERVERS ?? '').trim() || 'auto';
  const modes: ServersMode[] = ['auto', 'containers', 'local'];
  if (!modes.includes(rawMode as ServersMode)) problems.push(`TEST_SERVERS must be one of ${modes.join(', ')}; got "${rawMode}"`);
  const given: Partial<Record<ServerName, string>> = {};
  for (const name of SERVER_NAMES) {
    const { envVar, schemes } = SERVERS[name];
    const value = env[envVar]?.trim();
    if (!value) continue;
    let scheme: string;
    try {
      scheme = new URL(value).protocol;
    } catch {
      problems.push(`${envVar} is not a URL: "${value}" (expected e.g. ${schemes[0]}//127.0.0.1:${SERVERS[name].port})`);
      continue;
    }
    if (!schemes.includes(scheme)) problems.push(`${envVar} must use ${schemes.join(' or ')}; got "${value}"`);
    else given[name] = value;
  }
  if (problems.length > 0) throw new TestServersConfigError(problems);
  return { mode: rawMode as ServersMode, given };
}

/** Whether the plan depends on a Docker engine, i.e. whether it is worth asking one. */
export function needsContainerRuntime(request: ServerRequest): boolean {
  return request.mode !== 'local' && SERVER_NAMES.some((name) => request.given[name] === undefined);
}

/**
 * The choice for each server. `dockerAnswers` is whether a Docker engine answered (false when it was
 * not asked). Throws when TEST_SERVERS=containers and none answers.
 */
export function planServers(request: ServerRequest, dockerAnswers: boolean): Record<ServerName, ServerChoice> {
  if (request.mode === 'containers' && needsContainerRuntime(request) && !dockerAnswers) {
    throw new TestServersConfigError([
      'TEST_SERVERS=containers, but no Docker engine answers (start one, or unset TEST_SERVERS to use the local servers)',
    ]);
  }
  const plan = {} as Record<ServerName, ServerChoice>;
  for (const name of SERVER_NAMES) {
    const spec = SERVERS[name];
    const given = request.given[name];
    const base = { name, envVar: spec.envVar };
    if (given !== undefined) {
      plan[name] = { ...base, source: 'env', url: given, why: `${spec.envVar} is set` };
    } else if (request.mode !== 'local' && dockerAnswers) {
      plan[name] = { ...base, source: 'container', why: `${spec.envVar} is not set and a Docker engine answers: ${spec.image}` };
    } else {
      const noDocker = request.mode === 'local' ? 'TEST_SERVERS=local' : 'no Docker engine answers';
      plan[name] =
        spec.local !== undefined
          ? { ...base, source: 'local', url: spec.local, why: `${spec.envVar} is not set and ${noDocker}: the machine's own server` }
          : { ...base, source: 'none', why: `${spec.envVar} is not set and ${noDocker}: none, so the suites that need it skip` };
    }
  }
  return plan;
}
