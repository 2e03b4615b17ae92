/**
 * Global setup of the vitest project `integration`: picks NATS, Redis and MongoDB (server-plan.ts),
 * starts containers with testcontainers when that is the choice, checks that the chosen servers answer,
 * and hands the URLs to the tests as NATS_URL, REDIS_URL and MONGO_URL (the test workers are forked
 * after this runs and inherit the environment; `inject('testServers')` gives the same URLs).
 */
import { connect } from 'node:net';
import type { TestProject } from 'vitest/node';
import type { StartedTestContainer } from 'testcontainers';
import { needsContainerRuntime, planServers, readServerRequest, SERVER_NAMES, SERVERS, type ServerChoice, type ServerName } from './server-plan.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The URL of each server the integration tests use; MongoDB's is absent when there is none. */
    testServers: Partial<Record<ServerName, string>>;
  }
}

const DOCKER_PROBE_MS = 5_000;
const ANSWER_MS = 2_000;
const log = (line: string) => console.log(`[test servers] ${line}`);

/** Whether a Docker engine (any runtime testcontainers can use) answers, within a few seconds. */
async function dockerAnswers(): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), DOCKER_PROBE_MS);
    timer.unref();
  });
  const probe = import('testcontainers')
    .then(({ getContainerRuntimeClient }) => getContainerRuntimeClient())
    .then(
      () => true,
      () => false,
    );
  try {
    return await Promise.race([probe, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether something accepts TCP connections at the URL's host and port. */
function answers(url: string, defaultPort: number): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname.replace(/^\[|\]$/g, ''), port: Number(port || defaultPort) });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(ANSWER_MS, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

async function startContainer(name: ServerName): Promise<{ container: StartedTestContainer; url: string }> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const { image, port } = SERVERS[name];
  const base = new GenericContainer(image).withExposedPorts(port);
  const configured =
    name === 'nats'
      ? base.withCommand(['nats-server', '-js']).withWaitStrategy(Wait.forLogMessage('Server is ready'))
      : name === 'redis'
        ? base.withWaitStrategy(Wait.forLogMessage('Ready to accept connections'))
        : base.withWaitStrategy(Wait.forLogMessage(/Waiting for connections/));
  const container = await configured.start();
  const scheme = name === 'mongo' ? 'mongodb' : name;
  return { container, url: `${scheme}://${container.getHost()}:${container.getMappedPort(port)}` };
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const request = readServerRequest(process.env);
  const docker = needsContainerRuntime(request) ? await dockerAnswers() : false;
  const plan = planServers(request, docker);

  const containers: StartedTestContainer[] = [];
  const stopContainers = async () => {
    await Promise.allSettled(containers.map((c) => c.stop()));
  };
  const wanted = SERVER_NAMES.filter((name) => plan[name].source === 'container');
  const started = await Promise.allSettled(wanted.map((name) => startContainer(name)));
  const failures: string[] = [];
  started.forEach((result, i) => {
    const name = wanted[i]!;
    if (result.status === 'fulfilled') {
      containers.push(result.value.container);
      plan[name].url = result.value.url;
    } else {
      failures.push(`${SERVERS[name].image} did not start: ${String(result.reason)}`);
    }
  });
  if (failures.length > 0) {
    await stopContainers();
    throw new Error(`integration tests: ${failures.join('; ')}`);
  }

  const silent: ServerChoice[] = [];
  for (const name of ['nats', 'redis'] as const) {
    const choice = plan[name];
    if (!(await answers(choice.url!, SERVERS[name].port))) silent.push(choice);
  }
  if (silent.length > 0) {
    await stopContainers();
    throw new Error(
      silent
        .map((c) =>
          c.source === 'env'
            ? `${SERVERS[c.name].label} does not answer at ${c.url} (${c.envVar}): start it, or fix ${c.envVar}`
            : `${SERVERS[c.name].label} does not answer at ${c.url} (${c.why}): start it (\`npm test\` does, scripts/test.sh), or set ${c.envVar}`,
        )
        .join('\n'),
    );
  }

  const urls: Partial<Record<ServerName, string>> = {};
  for (const name of SERVER_NAMES) {
    const choice = plan[name];
    log(`${SERVERS[name].label}: ${choice.url ?? 'none'} (${choice.why})`);
    if (choice.url === undefined) continue;
    urls[name] = choice.url;
    process.env[choice.envVar] = choice.url;
  }
  project.provide('testServers', urls);
  return stopContainers;
}
