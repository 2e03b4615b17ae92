import type { Mode, TaskType } from '@actionedx/shared';
import { DEFAULT_SHARING, type Sharing } from './sharing.js';
import { DEFAULT_TTLS } from './ttl.js';

/** Everything the platform knows about one task type. */
export interface TaskProfile {
  taskType: TaskType;
  /** How long an answer stays cached. */
  ttlSeconds: number;
  /** Who may be answered from a cached answer: everyone, or only the user who caused it. */
  sharing: Sharing;
  /** The model this task is routed to. */
  model: string;
  /** Bumped whenever the template changes, so old cached answers stop matching. */
  promptVersion: number;
  /** What the assistant is asked to do for this task. */
  instructions: string;
  /** Follow-ups offered when the model suggests none. */
  defaultSuggestions: string[];
  /** Upper bound on generated tokens. */
  maxTokens: number;
}

export const MODE_PERSONAS: Record<Mode, string> = {
  strategist:
    'You are the Strategist: a direct, structured advisor. Lead with the recommendation, then the reasoning, then concrete next steps.',
  ally: 'You are the Ally: a warm, encouraging coach. Acknowledge the learner, explain simply, and keep them moving.',
  oracle:
    'You are the Oracle: a reflective guide. Surface the deeper pattern, ask one sharp question, and connect the answer to long-term growth.',
};

const DEFAULT_PROFILES: Record<TaskType, Omit<TaskProfile, 'taskType' | 'ttlSeconds' | 'sharing'>> = {
  strategy_audit: {
    model: 'gpt-4o',
    promptVersion: 1,
    instructions:
      'Audit the strategy described by the user against the 9 pillars (vision, market, value, operations, people, finance, technology, risk, impact). Score each pillar from 1 to 5 with one line of evidence, then name the three highest-leverage moves.',
    defaultSuggestions: ['Score the weakest pillar in detail', 'Draft a 90-day plan', 'Compare with last quarter'],
    maxTokens: 1200,
  },
  realtime_tutoring: {
    model: 'gpt-4o-mini',
    promptVersion: 1,
    instructions:
      'Tutor the learner in real time: answer the question at their level, give one worked example, and check understanding with a short question.',
    defaultSuggestions: ['Give me another example', 'Quiz me on this', 'Explain it more simply'],
    maxTokens: 600,
  },
  collaboration: {
    model: 'gpt-4o-mini',
    promptVersion: 1,
    instructions:
      'Help a team collaborate: summarise the positions, find common ground, and propose a fair next step with owners.',
    defaultSuggestions: ['Draft the meeting agenda', 'Assign owners', 'Summarise open questions'],
    maxTokens: 800,
  },
  framework_alignment: {
    model: 'gpt-4o',
    promptVersion: 1,
    instructions:
      'Run the tri-core loop: align the work with the learner framework (knowledge, skills, character), show where each core is strong or missing, and propose one adjustment per core.',
    defaultSuggestions: ['Map this to my current track', 'Show the gaps per core', 'Plan the next loop'],
    maxTokens: 1000,
  },
  ethical_assessment: {
    model: 'gpt-4o',
    promptVersion: 1,
    instructions:
      'Run the house of hearts assessment: weigh the decision for the people it affects, name the ethical risks and the values in tension, and recommend a course that keeps trust.',
    defaultSuggestions: ['Who is affected most?', 'What would a fair compromise be?', 'Draft a stakeholder message'],
    maxTokens: 1000,
  },
};

export interface TaskOverrides {
  ttlSeconds?: Partial<Record<TaskType, number>>;
  model?: Partial<Record<TaskType, string>>;
  sharing?: Partial<Record<TaskType, Sharing>>;
}

/** One registry of task profiles; an operator overrides TTLs, sharing and model routes by config. */
export class TaskRegistry {
  private readonly profiles: Map<TaskType, TaskProfile>;

  constructor(overrides: TaskOverrides = {}) {
    this.profiles = new Map(
      (Object.keys(DEFAULT_PROFILES) as TaskType[]).map((t) => [
        t,
        {
          taskType: t,
          ...DEFAULT_PROFILES[t],
          ttlSeconds: overrides.ttlSeconds?.[t] ?? DEFAULT_TTLS[t],
          sharing: overrides.sharing?.[t] ?? DEFAULT_SHARING[t],
          model: overrides.model?.[t] ?? DEFAULT_PROFILES[t].model,
        },
      ]),
    );
  }

  get(taskType: TaskType): TaskProfile {
    return this.profiles.get(taskType)!;
  }

  all(): TaskProfile[] {
    return [...this.profiles.values()];
  }
}
