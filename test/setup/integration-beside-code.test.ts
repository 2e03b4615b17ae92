import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { INTEGRATION_BESIDE_CODE } from './integration-beside-code.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** What a test that needs a server calls: then it belongs in the integration project, not the unit one. */
const NEEDS_A_SERVER = /createRedisClient\(\s*\{\s*url:\s*(?![\s']*redis:\/\/127\.0\.0\.1:1')|NatsBus\.connect\(|startService\(|startRedis\(|startNats\(|new Redis\(/;

function testsBesideCode(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (e.name === 'node_modules' || e.name === 'dist') return [];
    const path = join(dir, e.name);
    if (e.isDirectory()) return testsBesideCode(path);
    return e.name.endsWith('.test.ts') ? [relative(ROOT, path)] : [];
  });
}

describe('vitest projects', () => {
  const files = ['shared/src', 'services'].flatMap((d) => testsBesideCode(join(ROOT, d))).filter((f) => f.includes('/src/'));

  it('runs every test beside the code that talks to a server in the integration project', () => {
    const misplaced = files.filter((f) => NEEDS_A_SERVER.test(readFileSync(join(ROOT, f), 'utf8')) && !INTEGRATION_BESIDE_CODE.includes(f));
    expect(misplaced).toEqual([]);
  });

  it('lists only files that exist', () => {
    expect(INTEGRATION_BESIDE_CODE.filter((f) => !files.includes(f))).toEqual([]);
  });
});
