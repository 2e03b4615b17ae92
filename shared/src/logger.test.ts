import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runWithContext } from './context.js';
import { REDACTED, createLogger, readPackageVersion, redactSecrets } from './logger.js';

/** A logger writing its lines into an array, each parsed. */
function capture(version = '0.0.0-test') {
  const lines: Array<Record<string, any>> = [];
  const logger = createLogger({
    service: 'test-svc',
    version,
    level: 'info',
    destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, any>) },
  });
  return { logger, lines };
}

describe('createLogger', () => {
  it('puts service, version and the request id on every line', () => {
    const { logger, lines } = capture('1.2.3');
    runWithContext({ request_id: 'req-1' }, () => logger.info('hello'));
    logger.child({ role: 'x' }).info('again');
    expect(lines[0]).toMatchObject({ service: 'test-svc', version: '1.2.3', request_id: 'req-1', msg: 'hello' });
    expect(lines[1]).toMatchObject({ service: 'test-svc', version: '1.2.3', role: 'x' });
  });

  it('censors secrets 1 to 5 levels deep, whatever their case, and keeps everything else', () => {
    const { logger, lines } = capture('1.0.0');
    const logged = {
      password: 'p0',
      req: { headers: { authorization: 'Bearer t1', 'x-api-key': 'k1', cookie: 'c1', host: 'gw' } },
      upstream: { request: { options: { headers: { Authorization: 'Bearer t3', 'X-API-Key': 'k3' } } } },
      a: { b: { c: { d: { api_key: 'k4', token: 't4', note: 'kept' } } } },
      list: [{ secret: 's1' }, 'plain'],
    };
    const before = JSON.stringify(logged);
    logger.info(logged, 'call');
    const line = lines[0]!;
    expect(line.password).toBe(REDACTED);
    expect(line.req.headers).toEqual({ authorization: REDACTED, 'x-api-key': REDACTED, cookie: REDACTED, host: 'gw' });
    expect(line.upstream.request.options.headers).toEqual({ Authorization: REDACTED, 'X-API-Key': REDACTED });
    expect(line.a.b.c.d).toEqual({ api_key: REDACTED, token: REDACTED, note: 'kept' });
    expect(line.list).toEqual([{ secret: REDACTED }, 'plain']);
    for (const secret of ['p0', 't1', 'k1', 'c1', 't3', 'k3', 'k4', 't4', 's1']) expect(JSON.stringify(line)).not.toContain(secret);
    // The caller's object is untouched.
    expect(JSON.stringify(logged)).toBe(before);
  });

  it('censors secrets inside a logged error and in child bindings, keeping the error readable', () => {
    const { logger, lines } = capture('1.0.0');
    const err = Object.assign(new Error('upstream said no'), { config: { headers: { authorization: 'Bearer e1' } } });
    logger.child({ client: { apiKey: 'b1' } }).error({ err }, 'failed');
    const line = lines[0]!;
    expect(line.err).toMatchObject({ type: 'Error', message: 'upstream said no', config: { headers: { authorization: REDACTED } } });
    expect(line.err.stack).toContain('upstream said no');
    expect(line.client).toEqual({ apiKey: REDACTED });
    expect(err.config.headers.authorization).toBe('Bearer e1');
    logger.child({ role: 'r' }).child({ session: { token: 'b2' } }).info('grandchild');
    expect(lines[1]).toMatchObject({ role: 'r', session: { token: REDACTED }, version: '1.0.0' });
  });
});

describe('redactSecrets', () => {
  it('returns objects without a secret as they are, and stops at cycles', () => {
    const clean = { a: { b: [1, { c: 'd' }] }, at: new Date(0) };
    expect(redactSecrets(clean)).toBe(clean);
    const cyclic: Record<string, unknown> = { token: 'x' };
    cyclic.self = cyclic;
    expect(redactSecrets<Record<string, unknown>>(cyclic).token).toBe(REDACTED);
  });
});

describe('readPackageVersion', () => {
  it("reads the version of the module's own package, from any folder below it", () => {
    const own = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(readPackageVersion(import.meta.url)).toBe(own.version);
    const root = mkdtempSync(join(tmpdir(), 'pkg-version-'));
    writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'x', version: '7.8.9' }));
    mkdirSync(join(root, 'dist', 'http'), { recursive: true });
    expect(readPackageVersion(pathToFileURL(join(root, 'dist', 'http', 'main.js')))).toBe('7.8.9');
    expect(readPackageVersion(pathToFileURL(join(root, 'main.js')).href)).toBe('7.8.9');
  });

  it('says unknown when the nearest package.json has no version', () => {
    const root = mkdtempSync(join(tmpdir(), 'pkg-none-'));
    writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'no-version' }));
    expect(readPackageVersion(pathToFileURL(join(root, 'main.js')))).toBe('unknown');
  });
});
