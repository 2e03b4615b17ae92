import { z } from 'zod';

/** Thrown at start when the environment does not parse; lists every bad variable at once. */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** Parse the environment once against `schema`; every problem is reported together. */
export function loadConfig<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv = process.env): z.output<S> {
  // Empty strings mean "unset", as in most .env files.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(cleaned);
  if (parsed.success) return parsed.data;
  throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.') || '(env)'}: ${i.message}`));
}

const BOOL_WORDS = ['true', 'false', '1', '0', 'yes', 'no'] as const;
const TRUE_WORDS = new Set<string>(['true', '1', 'yes']);

/** Building blocks for the services' env schemas. */
export const env = {
  port: (def: number) => z.coerce.number().int().min(0).max(65_535).default(def),
  ms: (def: number) => z.coerce.number().int().positive().default(def),
  int: (def: number) => z.coerce.number().int().nonnegative().default(def),
  number: (def: number) => z.coerce.number().nonnegative().default(def),
  bool: (def: boolean) =>
    z
      .enum(BOOL_WORDS)
      .default(def ? 'true' : 'false')
      .transform((v) => TRUE_WORDS.has(v)),
  /** A boolean that stays undefined when unset, so the code can pick a default from context. */
  optionalBool: () =>
    z
      .enum(BOOL_WORDS)
      .optional()
      .transform((v) => (v === undefined ? undefined : TRUE_WORDS.has(v))),
  /**
   * A URL of one of `protocols`. Checked without throwing: a refinement that throws would end the parse
   * with a bare "Invalid URL" and hide the variable's name and every other problem. The value is not
   * echoed: URLs carry passwords.
   */
  url: (protocols: string[]) =>
    z.string().superRefine((value, ctx) => {
      const expected = protocols.map((p) => `${p}://`).join(' or ');
      if (!URL.canParse(value)) {
        ctx.addIssue({ code: 'custom', message: `is not a valid URL (expected ${expected}...)` });
      } else if (!protocols.includes(new URL(value).protocol.replace(/:$/, ''))) {
        ctx.addIssue({ code: 'custom', message: `must be a ${expected} URL` });
      }
    }),
  logLevel: () => z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** One URL, or several separated by commas (the servers of one cluster); each checked as `url` checks one. */
  urlList: (protocols: string[]) =>
    z.string().superRefine((value, ctx) => {
      const expected = protocols.map((p) => `${p}://`).join(' or ');
      const parts = value.split(',').map((u) => u.trim());
      parts.forEach((u, i) => {
        const which = parts.length > 1 ? ` (server ${i + 1})` : '';
        if (!URL.canParse(u)) ctx.addIssue({ code: 'custom', message: `is not a valid URL${which} (expected ${expected}...)` });
        else if (!protocols.includes(new URL(u).protocol.replace(/:$/, ''))) ctx.addIssue({ code: 'custom', message: `must be a ${expected} URL${which}` });
      });
    }),
};

/** Variables every service reads. */
export const CommonEnvSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  LOG_LEVEL: env.logLevel(),
  /** Pretty logs; defaults to on for a terminal outside production. */
  LOG_PRETTY: env.optionalBool(),
  /** A NATS server, or the servers of a cluster separated by commas. */
  NATS_URL: env.urlList(['nats', 'tls', 'ws', 'wss']).optional(),
  REDIS_URL: env.url(['redis', 'rediss']).optional(),
});
