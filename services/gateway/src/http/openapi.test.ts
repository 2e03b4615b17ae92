import { ChatRequestSchema } from '@actionedx/shared';
import { describe, expect, it } from 'vitest';
import { buildOpenApi } from './openapi.js';
import { TASK_ENDPOINTS } from './task-requests.js';

describe('the OpenAPI document', () => {
  const doc = buildOpenApi() as { openapi: string; paths: Record<string, any>; components: { schemas: Record<string, any> } };

  it('lists every public endpoint', () => {
    expect(doc.openapi).toBe('3.1.0');
    for (const path of ['/api/assistant/chat', '/api/cache/stats', '/api/cache/invalidate', '/api/cache/health', '/api/health', '/api/metrics', '/api/jobs', '/api/jobs/{id}', '/api/jobs/{id}/events', ...TASK_ENDPOINTS.map((t) => t.path)]) {
      expect(doc.paths[path], path).toBeDefined();
    }
  });

  it('describes the chat request from the schema that validates it', () => {
    const req = doc.components.schemas.ChatRequest;
    expect(req.required).toEqual(['user_id', 'message']);
    expect(req.properties.mode.enum).toEqual(ChatRequestSchema.shape.mode.unwrap().options);
    expect(req.properties.message.maxLength).toBe(16_000);
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
    const audit = doc.paths['/api/strategy-audit'].post.requestBody.content['application/json'].schema;
    expect(Object.keys(audit.properties)).toEqual(expect.arrayContaining(['user_id', 'organization', 'pillars']));
  });
});
