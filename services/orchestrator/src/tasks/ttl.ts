import { ConfigError, TASK_TYPES, type TaskType } from '@actionedx/shared';

/** How long an answer stays cached, in seconds, per task type (the seed's figures). */
export const DEFAULT_TTLS: Readonly<Record<TaskType, number>> = {
  strategy_audit: 86_400,
  realtime_tutoring: 1_800,
  collaboration: 3_600,
  framework_alignment: 7_200,
  ethical_assessment: 43_200,
};

/** TTLs with `CACHE_TTL_<TASK_TYPE>=<seconds>` applied (a positive integer); every bad value is reported. */
export function resolveTtls(env: Readonly<Record<string, string | undefined>>): Record<TaskType, number> {
  const ttls = { ...DEFAULT_TTLS };
  const problems: string[] = [];
  for (const taskType of TASK_TYPES) {
    const name = `CACHE_TTL_${taskType.toUpperCase()}`;
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    const seconds = Number(raw);
    if (/^\d+$/.test(raw.trim()) && Number.isSafeInteger(seconds) && seconds > 0) ttls[taskType] = seconds;
    else problems.push(`${name}: must be a whole number of seconds above 0, got "${raw}"`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return ttls;
}
