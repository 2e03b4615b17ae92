import specs from '@asyncapi/specs';
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WS_CLIENT_MESSAGES, WsServerMessageSchema } from '@actionedx/shared';
import { startTestGateway, type TestGateway } from '@actionedx/testkit';
import { buildAsyncApi } from './asyncapi.js';

interface Doc {
  asyncapi: string;
  channels: { assistant: { address: string; messages: Record<string, { payload: any }> } };
  operations: Record<string, { action: string; messages: Array<{ $ref: string }> }>;
}

const doc = buildAsyncApi() as unknown as Doc;
const messages = doc.channels.assistant.messages;
const payloadsOf = (action: string) =>
  doc.operations[Object.keys(doc.operations).find((k) => doc.operations[k]!.action === action)!]!.messages.map(
    (m) => messages[m.$ref.split('/').at(-1)!]!.payload,
  );

describe('the AsyncAPI document', () => {
  it('is valid AsyncAPI 3.0 (the official JSON Schema of the specification)', () => {
    // The specification's schema bundles the draft-07 meta-schema itself: ajv must not add its own copy.
    const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false, meta: false, validateSchema: false });
    const validate = ajv.compile(specs.schemas['3.0.0']);
    const ok = validate(doc);
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
    expect(doc.asyncapi).toBe('3.0.0');
    expect(doc.channels.assistant.address).toBe('/ws/assistant/{session_id}');
  });

  it('documents every server message type of the shared schema, as sent', () => {
    const sent = payloadsOf('send').map((p) => p.properties.type.const).sort();
    expect(sent).toEqual(WsServerMessageSchema.options.map((o) => o.shape.type.value).sort());
  });

  it('documents every client message type, and the seed client\'s turn without `type`', () => {
    const received = payloadsOf('receive');
    const types = received.flatMap((p) => p.properties.type.enum ?? [p.properties.type.const]).sort();
    expect(types).toEqual(Object.keys(WS_CLIENT_MESSAGES).sort());
    const turn = received.find((p) => p.properties.message !== undefined);
    expect(turn.required).toEqual(['message']);
    expect(turn.properties.session_id).toBeUndefined();
  });

  describe('served', () => {
    let gw: TestGateway;
    beforeAll(async () => {
      gw = await startTestGateway();
    });
    afterAll(() => gw.close());

    it('at GET /api/asyncapi.json', async () => {
      const res = await fetch(`${gw.baseUrl}/api/asyncapi.json`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual(JSON.parse(JSON.stringify(doc)));
    });
  });
});
