import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { needsContainerRuntime, planServers, readServerRequest, SERVERS, TestServersConfigError } from './server-plan.js';

const plan = (env: Record<string, string | undefined>, docker: boolean) => planServers(readServerRequest(env), docker);
const sources = (p: ReturnType<typeof plan>) => ({ nats: p.nats.source, redis: p.redis.source, mongo: p.mongo.source });

describe('readServerRequest', () => {
  it('takes the URLs that are given, ignoring empty ones, in auto mode by default', () => {
    expect(readServerRequest({ NATS_URL: 'nats://n:4222', REDIS_URL: '', MONGO_URL: '  ' })).toEqual({
      mode: 'auto',
      given: { nats: 'nats://n:4222' },
    });
    expect(readServerRequest({ TEST_SERVERS: 'local', REDIS_URL: 'rediss://r:6380/2', MONGO_URL: 'mongodb+srv://m.example' })).toEqual({
      mode: 'local',
      given: { redis: 'rediss://r:6380/2', mongo: 'mongodb+srv://m.example' },
    });
  });

  it('refuses "host:port" without a scheme, and says which schemes it takes', () => {
    expect(() => readServerRequest({ REDIS_URL: 'localhost:6379' })).toThrow(/REDIS_URL must use redis: or rediss:; got "localhost:6379"/);
  });

  it('reports every bad variable at once', () => {
    let error: unknown;
    try {
      readServerRequest({ TEST_SERVERS: 'docker', NATS_URL: 'http://127.0.0.1:4222', REDIS_URL: '127.0.0.1:6379', MONGO_URL: 'not a url' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TestServersConfigError);
    const { problems, message } = error as TestServersConfigError;
    expect(problems).toHaveLength(4);
    expect(message).toMatch(/TEST_SERVERS must be one of auto, containers, local; got "docker"/);
    expect(message).toMatch(/NATS_URL must use nats: or tls:; got "http:\/\/127.0.0.1:4222"/);
    expect(message).toMatch(/REDIS_URL is not a URL: "127.0.0.1:6379" \(expected e\.g\. redis:\/\/127\.0\.0\.1:6379\)/);
    expect(message).toMatch(/MONGO_URL is not a URL: "not a url" \(expected e\.g\. mongodb:\/\/127\.0\.0\.1:27017\)/);
  });
});

describe('planServers', () => {
  it('uses the URLs from the environment, and asks no Docker engine when all three are given', () => {
    const env = { NATS_URL: 'nats://n:1', REDIS_URL: 'redis://r:2', MONGO_URL: 'mongodb://m:3' };
    expect(needsContainerRuntime(readServerRequest(env))).toBe(false);
    const p = plan(env, false);
    expect(sources(p)).toEqual({ nats: 'env', redis: 'env', mongo: 'env' });
    expect([p.nats.url, p.redis.url, p.mongo.url]).toEqual(['nats://n:1', 'redis://r:2', 'mongodb://m:3']);
    expect(p.redis.why).toBe('REDIS_URL is set');
  });

  it('starts containers for what is not given when a Docker engine answers', () => {
    const env = { REDIS_URL: 'redis://r:2' };
    expect(needsContainerRuntime(readServerRequest(env))).toBe(true);
    const p = plan(env, true);
    expect(sources(p)).toEqual({ nats: 'container', redis: 'env', mongo: 'container' });
    expect(p.nats.url).toBeUndefined();
    expect(p.mongo.why).toBe('MONGO_URL is not set and a Docker engine answers: mongo:7');
  });

  it("falls back to the machine's servers without Docker, and to no MongoDB (its suite skips)", () => {
    const p = plan({}, false);
    expect(sources(p)).toEqual({ nats: 'local', redis: 'local', mongo: 'none' });
    expect(p.nats.url).toBe('nats://127.0.0.1:4222');
    expect(p.redis.url).toBe('redis://127.0.0.1:6379');
    expect(p.mongo.url).toBeUndefined();
    expect(p.mongo.why).toMatch(/^MONGO_URL is not set and no Docker engine answers: none/);
  });

  it('TEST_SERVERS=local never starts a container nor asks for Docker', () => {
    expect(needsContainerRuntime(readServerRequest({ TEST_SERVERS: 'local' }))).toBe(false);
    const p = plan({ TEST_SERVERS: 'local', MONGO_URL: 'mongodb://m:3' }, true);
    expect(sources(p)).toEqual({ nats: 'local', redis: 'local', mongo: 'env' });
    expect(p.nats.why).toMatch(/TEST_SERVERS=local/);
  });

  it('TEST_SERVERS=containers requires a Docker engine, unless every URL is given', () => {
    expect(() => plan({ TEST_SERVERS: 'containers' }, false)).toThrow(/no Docker engine answers/);
    expect(sources(plan({ TEST_SERVERS: 'containers' }, true))).toEqual({ nats: 'container', redis: 'container', mongo: 'container' });
    const all = { TEST_SERVERS: 'containers', NATS_URL: 'nats://n:1', REDIS_URL: 'redis://r:2', MONGO_URL: 'mongodb://m:3' };
    expect(sources(plan(all, false))).toEqual({ nats: 'env', redis: 'env', mongo: 'env' });
  });

  it('starts the same images as docker-compose.yml', () => {
    const compose = parse(readFileSync(new URL('../../docker-compose.yml', import.meta.url), 'utf8')) as { services: Record<string, { image: string }> };
    for (const [name, spec] of Object.entries(SERVERS)) expect(spec.image, name).toBe(compose.services[name]!.image);
  });
});
