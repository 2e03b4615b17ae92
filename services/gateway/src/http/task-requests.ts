import { z } from 'zod';
import { AppError, ChatRequestSchema, LIMITS, type ChatRequest, type TaskType } from '@actionedx/shared';
import { parseChatRequest, parseOrThrow } from '../chat/request-validation.js';

/**
 * The task endpoints take a few structured fields and turn them into one chat request. The message is
 * built deterministically (fixed labels, sorted keys, normalised spaces), so the same input always
 * reaches the same cache entry.
 */

/** Fields every task endpoint shares with chat; the rest is the task's own. */
const TaskBaseSchema = ChatRequestSchema.pick({
  user_id: true,
  mode: true,
  session_id: true,
  context: true,
  use_cache: true,
}).extend({
  message: z.string().max(LIMITS.messageMaxChars, `message is longer than ${LIMITS.messageMaxChars} characters`).optional(),
});

const shortText = (max: number) => z.string().trim().min(1).max(max);
const scores = z
  .record(shortText(64), z.union([z.string().max(1_000), z.number().finite()]))
  .refine((r) => Object.keys(r).length <= 20, 'at most 20 entries');
const list = z.array(shortText(200)).max(20);

const StrategyAuditSchema = TaskBaseSchema.extend({
  organization: shortText(200).optional(),
  /** Pillar name → score or note, e.g. `{ "innovation": 3 }`. */
  pillars: scores.optional(),
});

const TriCoreLoopSchema = TaskBaseSchema.extend({
  initiative: shortText(500).optional(),
  /** Core name → state or score. */
  cores: scores.optional(),
});

const HouseOfHeartsSchema = TaskBaseSchema.extend({
  scenario: z.string().trim().min(1).max(4_000).optional(),
  stakeholders: list.optional(),
  values: list.optional(),
});

/** A labelled part of the message; the value is already formatted (one line, or `\n- ` bullets). */
type Section = readonly [label: string, value: string | undefined];
type TaskBase = z.output<typeof TaskBaseSchema>;

const oneLine = (s: string): string => s.replace(/\s+/g, ' ').trim();

const text = (s: string | undefined): string | undefined => (s === undefined ? undefined : oneLine(s));

const bullets = (items: string[] | undefined): string | undefined =>
  items === undefined || items.length === 0 ? undefined : items.map((i) => `\n- ${oneLine(i)}`).join('');

const sortedEntries = (r: Record<string, string | number> | undefined): string | undefined =>
  r === undefined || Object.keys(r).length === 0
    ? undefined
    : Object.keys(r)
        .sort()
        .map((k) => `\n- ${oneLine(k)}: ${oneLine(String(r[k]))}`)
        .join('');

/** `Title.` then one `Label: value` line per given field; the client's own words last. */
function composeMessage(title: string, sections: Section[], message: string | undefined, required: string): string {
  const given = sections.filter((s): s is readonly [string, string] => s[1] !== undefined && s[1].trim() !== '');
  const note = message?.trim();
  if (given.length === 0 && !note) throw new AppError('message_empty', `Give a message or at least one of: ${required}.`);
  const lines = [`${title}.`];
  for (const [label, value] of given) lines.push(value.startsWith('\n') ? `${label}:${value}` : `${label}: ${value}`);
  if (note) lines.push(`Request: ${note}`);
  return lines.join('\n');
}

export interface TaskEndpoint {
  path: string;
  taskType: TaskType;
  /** What the body may hold (the API document is generated from it). */
  schema: z.ZodType;
  title: string;
  /** Validate a body and build its chat request; throws AppError with the client's code. */
  toChatRequest(body: unknown): ChatRequest;
}

interface TaskSpec<S extends z.ZodType<TaskBase>> {
  path: string;
  taskType: TaskType;
  schema: S;
  /** First line of the message. */
  title: string;
  /** Named in the error when nothing was given. */
  fields: string;
  sections(input: z.output<S>): Section[];
}

function taskEndpoint<S extends z.ZodType<TaskBase>>(spec: TaskSpec<S>): TaskEndpoint {
  return {
    path: spec.path,
    taskType: spec.taskType,
    schema: spec.schema,
    title: spec.title,
    toChatRequest(body) {
      const input = parseOrThrow(spec.schema, body);
      return parseChatRequest({
        user_id: input.user_id,
        mode: input.mode,
        session_id: input.session_id,
        context: input.context,
        use_cache: input.use_cache,
        task_type: spec.taskType,
        message: composeMessage(spec.title, spec.sections(input), input.message, spec.fields),
      });
    },
  };
}

export const TASK_ENDPOINTS: readonly TaskEndpoint[] = [
  taskEndpoint({
    path: '/api/strategy-audit',
    taskType: 'strategy_audit',
    schema: StrategyAuditSchema,
    title: 'Strategy audit (9 pillars)',
    fields: 'organization, pillars',
    sections: (i) => [
      ['Organization', text(i.organization)],
      ['Pillars', sortedEntries(i.pillars)],
    ],
  }),
  taskEndpoint({
    path: '/api/tri-core-loop',
    taskType: 'framework_alignment',
    schema: TriCoreLoopSchema,
    title: 'Tri-Core Loop framework alignment',
    fields: 'initiative, cores',
    sections: (i) => [
      ['Initiative', text(i.initiative)],
      ['Cores', sortedEntries(i.cores)],
    ],
  }),
  taskEndpoint({
    path: '/api/house-of-hearts',
    taskType: 'ethical_assessment',
    schema: HouseOfHeartsSchema,
    title: 'House of Hearts ethical assessment',
    fields: 'scenario, stakeholders, values',
    sections: (i) => [
      ['Scenario', i.scenario?.trim()],
      ['Stakeholders', bullets(i.stakeholders)],
      ['Values', bullets(i.values)],
    ],
  }),
];
