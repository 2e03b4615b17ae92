import type { Express } from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChatRequestSchema } from '@actionedx/shared';
import { startTestGateway, type TestGateway } from '@actionedx/testkit';
import { buildOpenApi } from './openapi.js';
import { TASK_ENDPOINTS } from './task-requests.js';

interface Layer {
  slash?: boolean;
  rawPath?: unknown;
  route?: { path: string; methods: Record<string, boolean> };
  handle: { stack?: Layer[] };
}

/** Every `METHOD /path` the express app routes, found by walking its router (`.all` catch-alls left out). */
function routesOf(app: Express): string[] {
  const found: string[] = [];
  const walk = (stack: Layer[], prefix: string): void => {
    for (const layer of stack) {
      if (layer.route !== undefined) {
        const path = prefix + layer.route.path.replace(/[:*](\w+)/g, '{$1}');
        for (const [method, on] of Object.entries(layer.route.methods)) if (on && method !== '_all') found.push(`${method} ${path}`);
      } else if (layer.handle.stack !== undefined) {
        walk(layer.handle.stack, layer.slash === false ? prefix + String(layer.rawPath) : prefix);
      }
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack, '');
  return found.sort();
}

describe('the OpenAPI document', () => {
  const doc = buildOpenApi() as { openapi: string; paths: Record<string, any>; components: { schemas: Record<string, any> } };
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway();
  });
  afterAll(() => gw.close());

  it("documents exactly the express app's routes, each with its methods", () => {
    const documented = Object.entries(doc.paths)
      .flatMap(([path, ops]) => Object.keys(ops as object).map((method) => `${method} ${path}`))
      .sort();
    const routed = routesOf(gw.gateway.app);
    expect(routed).toContain('post /api/assistant/chat');
    expect(routed.length).toBeGreaterThan(10);
    expect(documented).toEqual(routed);
  });

  it('is what GET /api/openapi.json serves', async () => {
    const res = await fetch(`${gw.baseUrl}/api/openapi.json`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(JSON.parse(JSON.stringify(doc)));
    expect(doc.openapi).toBe('3.1.0');
  });

  it('describes the chat request from the schema that validates it', () => {
    const req = doc.components.schemas.ChatRequest;
    expect(req.required).toEqual(['user_id', 'message']);
    expect(req.properties.mode.enum).toEqual(ChatRequestSchema.shape.mode.unwrap().options);
    expect(req.properties.message.maxLength).toBe(16_000);
    expect(req.properties.session_id).toMatchObject({ maxLength: 128, pattern: '^[A-Za-z0-9_.:@-]+$' });
    expect(doc.components.schemas.Error.properties.error.properties.code.enum).toContain('no_workers');
    expect(doc.components.schemas.ChatResponse.required).toContain('cached');
  });

  it('describes job submissions from the schema that validates them', () => {
    const submit = doc.components.schemas.JobSubmit;
    const kinds = (submit.oneOf ?? submit.anyOf).map((v: any) => v.properties.kind.const);
    expect(kinds.sort()).toEqual(['batch_alignment', 'document_audit']);
    expect(doc.components.schemas.Error.properties.error.properties.code.enum).toContain('jobs_unavailable');
  });

  it('gives each task endpoint its own body schema', () => {
    for (const t of TASK_ENDPOINTS) expect(doc.paths[t.path].post.requestBody.content['application/json'].schema, t.path).toBeDefined();
    const audit = doc.paths['/api/strategy-audit'].post.requestBody.content['application/json'].schema;
    expect(Object.keys(audit.properties)).toEqual(expect.arrayContaining(['user_id', 'organization', 'pillars']));
  });

  it('describes the invalidation pattern with the rules the server applies', () => {
    const pattern = doc.paths['/api/cache/invalidate'].post.parameters.find((p: { name: string }) => p.name === 'pattern').schema;
    expect(pattern.maxLength).toBe(256);
    const re = new RegExp(pattern.pattern);
    for (const ok of ['*', 'ai_cache:*', 'ai_cache:collaboration:a?b*']) expect(re.test(ok), ok).toBe(true);
    for (const bad of ['**', 'ai_cache:a.b', 'ai_cache:[a]', 'ws_session:*']) expect(re.test(bad), bad).toBe(false);
  });
});
