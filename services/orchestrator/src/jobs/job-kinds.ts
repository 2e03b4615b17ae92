import {
  BatchAlignmentInputSchema,
  DocumentAuditInputSchema,
  JOB_DEFAULT_TASK_TYPE,
  LIMITS,
  splitSections,
  type JobKind,
  type JobPart,
  type JobRecord,
  type JobResult,
  type StepRecord,
  type TaskType,
} from '@actionedx/shared';

/** Kinds of step, a label of `jobs_step_duration_seconds`. */
export type StepKind = 'section' | 'item' | 'synthesis';

/** One model call of a job: its place, what it is called in the result, and the message the model gets. */
export interface PlannedStep {
  index: number;
  kind: StepKind;
  label: string;
  message: string;
}

/** A job's steps, worked out from its input alone: a retry plans the same steps, so stored ones can be skipped. */
export interface JobPlan {
  steps: PlannedStep[];
  /** The closing step over every part's answer, when the kind has one (its index follows the steps'). */
  synthesis?: (parts: StepRecord[]) => PlannedStep;
}

export interface JobKindSpec {
  kind: JobKind;
  /** The task type (prompt, model route, cache TTL) when the submission names none. */
  defaultTaskType: TaskType;
  plan(rec: Pick<JobRecord, 'input' | 'title'>): JobPlan;
}

const quoted = (title: string | null | undefined): string => (title ? `"${title}"` : 'the document');

/** A long document, one call per section, then a synthesis of the section findings. */
const documentAudit: JobKindSpec = {
  kind: 'document_audit',
  defaultTaskType: JOB_DEFAULT_TASK_TYPE.document_audit,
  plan(rec) {
    const input = DocumentAuditInputSchema.parse(rec.input);
    const title = input.title ?? rec.title;
    const sections = splitSections(input.document);
    const steps = sections.map((text, i): PlannedStep => ({
      index: i,
      kind: 'section',
      label: `Section ${i + 1} of ${sections.length}`,
      message:
        `Section ${i + 1} of ${sections.length} of ${quoted(title)}. Assess this section on its own; ` +
        `a synthesis of every section follows.\n\n${text}`,
    }));
    return {
      steps,
      synthesis: (parts) => ({
        index: steps.length,
        kind: 'synthesis',
        label: 'Synthesis',
        message: synthesisMessage(title, parts),
      }),
    };
  },
};

/** A batch of items (lesson plans, say), one call per item, no synthesis. */
const batchAlignment: JobKindSpec = {
  kind: 'batch_alignment',
  defaultTaskType: JOB_DEFAULT_TASK_TYPE.batch_alignment,
  plan(rec) {
    const input = BatchAlignmentInputSchema.parse(rec.input);
    const n = input.items.length;
    return {
      steps: input.items.map((item, i) => {
        const label = `Item ${item.id ?? i + 1}`;
        return { index: i, kind: 'item', label, message: `${label} (${i + 1} of ${n}${input.title ? ` in "${input.title}"` : ''}).\n\n${item.text}` };
      }),
    };
  },
};

/** The message of the synthesis: each part's findings, trimmed so that together they fit in one message. */
function synthesisMessage(title: string | null | undefined, parts: StepRecord[]): string {
  const head =
    `Synthesise one assessment of ${quoted(title)} from the findings on its ${parts.length} sections below: ` +
    'the overall picture, the strongest and weakest areas, and the three moves that matter most.';
  const room = LIMITS.messageMaxChars - head.length - parts.length * 40;
  const each = Math.max(200, Math.floor(room / Math.max(1, parts.length)));
  const body = parts
    .sort((a, b) => a.index - b.index)
    .map((p) => `## ${p.label}\n${p.response.length > each ? `${p.response.slice(0, each - 1)}…` : p.response}`)
    .join('\n\n');
  return `${head}\n\n${body}`;
}

/** Every job kind; the gateway validates against the same schemas, the workers plan from here. */
export class JobKindRegistry {
  private readonly specs = new Map<JobKind, JobKindSpec>([
    [documentAudit.kind, documentAudit],
    [batchAlignment.kind, batchAlignment],
  ]);

  get(kind: JobKind): JobKindSpec {
    const spec = this.specs.get(kind);
    if (!spec) throw new Error(`no job kind ${kind}`);
    return spec;
  }
}

/** The result of a job from its stored steps. */
export function resultOf(plan: JobPlan, steps: Map<number, StepRecord>): JobResult {
  const part = (s: StepRecord): JobPart => ({ index: s.index, label: s.label, response: s.response, model: s.model, cached: s.cached });
  const parts = plan.steps.map((p) => steps.get(p.index)).filter((s): s is StepRecord => s !== undefined);
  const synthesis = plan.synthesis ? steps.get(plan.steps.length) : undefined;
  const suggestions = synthesis?.suggestions ?? [...new Set(parts.flatMap((p) => p.suggestions))].slice(0, 5);
  return { summary: synthesis?.response ?? null, parts: parts.map(part), suggestions };
}
