import { z } from 'zod';
import {
  JobDoneEventSchema,
  JobFailedEventSchema,
  JobProgressEventSchema,
  LIMITS,
  WsCancelSchema,
  WsChatTurnSchema,
  WsConnectedSchema,
  WsErrorSchema,
  WsModeSwitchSchema,
  WsPingSchema,
  WsPongSchema,
  WsQuerySchema,
  WsResponseSchema,
  WsResumeFailedSchema,
  WsResumeSchema,
  WsStreamChunkSchema,
  WsStreamEndSchema,
  WsStreamResetSchema,
  WsStreamStartSchema,
  WsSystemSchema,
  WsTypingEchoSchema,
  WsTypingSchema,
  WsTurnSchema,
  WsPresenceSchema,
} from '@actionedx/shared';
import { GATEWAY_VERSION } from '../version.js';

/** AsyncAPI 3.0 schemas are a superset of JSON Schema draft 7; the `$schema` line is left to the document. */
function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io, target: 'draft-7', unrepresentable: 'any' });
  return rest;
}

interface MessageSpec {
  schema: z.ZodType;
  summary: string;
}

/** What a client sends; `type` may be left out of a chat turn (the seed's client does). */
const CLIENT_MESSAGES: Record<string, MessageSpec> = {
  chatTurn: { schema: WsChatTurnSchema, summary: 'A chat turn: `{user_id?, message, mode?, context?, ...}`, `type` absent, "message" or "chat"' },
  ping: { schema: WsPingSchema, summary: 'Asks for a `pong`' },
  typingIndicator: { schema: WsTypingSchema, summary: 'The user is (or stopped) typing; echoed as a `typing` message' },
  modeSwitch: { schema: WsModeSwitchSchema, summary: 'The mode of the following turns that name none' },
  cancel: { schema: WsCancelSchema, summary: 'Stops the running turn (it ends with an `error` `cancelled`)' },
  resume: {
    schema: WsResumeSchema,
    summary:
      'After a reconnection (any replica, same session): the answer `request_id` again from after `last_seq` (-1: all), then live, then `stream_end` and `response`, exactly once; or `resume_failed`',
  },
};

/** What the gateway sends, in the order a turn produces them, then the others. */
const SERVER_MESSAGES: Record<string, MessageSpec> = {
  connected: { schema: WsConnectedSchema, summary: 'First message on every socket, with the session and its mode' },
  streamStart: { schema: WsStreamStartSchema, summary: 'A worker took the turn' },
  streamChunk: { schema: WsStreamChunkSchema, summary: 'The next piece of the answer (`seq` from 0, no gaps)' },
  streamReset: { schema: WsStreamResetSchema, summary: 'The chunks so far are void; the whole answer follows again from `seq` 0' },
  streamEnd: { schema: WsStreamEndSchema, summary: 'The last chunk was sent' },
  response: { schema: WsResponseSchema, summary: 'The whole answer, as `POST /api/assistant/chat` returns it' },
  typing: { schema: WsTypingEchoSchema, summary: 'A typing indicator of the session (in collaboration sessions, from every member)' },
  system: { schema: WsSystemSchema, summary: 'A notice (mode switched, nothing to cancel; in collaboration sessions a member joined or left, with `event` and `user_id`)' },
  turn: { schema: WsTurnSchema, summary: "Collaboration sessions: a member's turn, to every member, before the answer's frames (which every member gets too)" },
  presence: { schema: WsPresenceSchema, summary: 'Collaboration sessions: the members and who is online, on every change (across gateways; a dead gateway\'s members time out)' },
  pong: { schema: WsPongSchema, summary: 'The answer to `ping`' },
  error: { schema: WsErrorSchema, summary: 'Bad input or a failed turn, with its stable `code`; the socket stays usable' },
  resumeFailed: {
    schema: WsResumeFailedSchema,
    summary: 'A `resume` that cannot replay: `resume_expired` (past the window; `response` holds the final answer when known), `resume_unknown`, `resume_forbidden` (not the owner)',
  },
  jobProgress: { schema: JobProgressEventSchema, summary: "A background job of the socket's user moved on (0-100, with a message)" },
  jobDone: { schema: JobDoneEventSchema, summary: "A background job of the socket's user completed, with its result" },
  jobFailed: { schema: JobFailedEventSchema, summary: "A background job of the socket's user failed or was cancelled" },
};

const messagesOf = (specs: Record<string, MessageSpec>, io: 'input' | 'output') =>
  Object.fromEntries(
    Object.entries(specs).map(([name, spec]) => [
      name,
      { name, summary: spec.summary, contentType: 'application/json', payload: jsonSchema(spec.schema, io) },
    ]),
  );

const refsTo = (specs: Record<string, MessageSpec>) =>
  Object.keys(specs).map((name) => ({ $ref: `#/channels/assistant/messages/${name}` }));

/**
 * The assistant's WebSocket protocol as AsyncAPI 3.0, generated from the zod schemas the gateway parses
 * client messages with and types its own messages by. Operations are the gateway's view: it receives the
 * client's messages and sends its own.
 */
export function buildAsyncApi(): Record<string, unknown> {
  const messages = { ...messagesOf(CLIENT_MESSAGES, 'input'), ...messagesOf(SERVER_MESSAGES, 'output') };
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'ActionEDx assistant WebSocket',
      version: GATEWAY_VERSION,
      description:
        'One JSON object per WebSocket text message in each direction. Bad input gets an `error` message and ' +
        `the socket stays open; binary messages are refused (\`binary_frame\`), messages over ${LIMITS.bodyMaxBytes} ` +
        'bytes too (`payload_too_large`). One turn streams at a time per socket (`busy`).',
    },
    defaultContentType: 'application/json',
    servers: {
      gateway: { host: 'localhost:8001', protocol: 'ws', description: 'The gateway, on the same port as its HTTP API' },
    },
    channels: {
      assistant: {
        address: '/ws/assistant/{session_id}',
        title: 'Assistant session',
        description:
          'A session of the assistant; reconnecting to the same `session_id` keeps its mode and message count. ' +
          'The query `user_id` is the default user of its turns. With authentication on, the upgrade carries ' +
          '`Authorization: Bearer <JWT or API key>` or `?access_token=`; the session belongs to the user who opened it ' +
          '(404 for anyone else); the gateway closes the socket with 1008 when the token expires (after the answer it ' +
          'is streaming) and with 1013 when the client stops reading.',
        servers: [{ $ref: '#/servers/gateway' }],
        parameters: {
          session_id: {
            description: `1-${LIMITS.sessionIdMaxChars} characters of A-Z a-z 0-9 _ . : @ - (percent-encoded or not).`,
            examples: ['session-123'],
          },
        },
        messages,
        bindings: { ws: { method: 'GET', query: jsonSchema(WsQuerySchema, 'input'), bindingVersion: '0.1.0' } },
      },
    },
    operations: {
      receiveClientMessage: {
        action: 'receive',
        channel: { $ref: '#/channels/assistant' },
        summary: 'What a client sends',
        messages: refsTo(CLIENT_MESSAGES),
      },
      sendServerMessage: {
        action: 'send',
        channel: { $ref: '#/channels/assistant' },
        summary: 'What the gateway sends',
        messages: refsTo(SERVER_MESSAGES),
      },
    },
  };
}
