import { getJson, postJson, type HttpResult } from './clients.js';
import { until } from './processes.js';

/** A job as the API shows it (the fields tests read). */
export interface JobBody {
  id: string;
  state: 'queued' | 'active' | 'completed' | 'failed' | 'cancelled';
  progress: { percent: number; message: string };
  attempts: number;
  steps_done: number;
  steps_total: number;
  cancel_requested: boolean;
  result?: { summary: string | null; parts: { index: number; label: string; response: string; cached: boolean }[]; suggestions: string[] } | null;
  error: { code: string; message: string; retryable: boolean } | null;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
  cost_usd: number;
  webhook: { state: 'pending' | 'delivered' | 'failed'; attempts: number } | null;
  links: { self: string; events: string };
}

/** `POST /api/jobs` as `userId`. */
export const submitJob = (baseUrl: string, userId: string, body: Record<string, unknown>): Promise<HttpResult<JobBody>> =>
  postJson<JobBody>(`${baseUrl}/api/jobs`, { user_id: userId, ...body });

export const getJob = (baseUrl: string, userId: string, id: string): Promise<HttpResult<JobBody>> =>
  getJson<JobBody>(`${baseUrl}/api/jobs/${id}?user_id=${encodeURIComponent(userId)}`);

export async function cancelJob(baseUrl: string, userId: string, id: string): Promise<HttpResult<JobBody>> {
  const res = await fetch(`${baseUrl}/api/jobs/${id}?user_id=${encodeURIComponent(userId)}`, { method: 'DELETE' });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

/** Polls the job until `done(job)` holds; returns it. */
export async function waitForJob(
  baseUrl: string,
  userId: string,
  id: string,
  done: (job: JobBody) => boolean = (j) => ['completed', 'failed', 'cancelled'].includes(j.state),
  timeoutMs = 20_000,
): Promise<JobBody> {
  let last: JobBody | undefined;
  await until(
    async () => {
      const res = await getJob(baseUrl, userId, id);
      last = res.body;
      return res.status === 200 && done(res.body);
    },
    timeoutMs,
    `job ${id} (last: ${JSON.stringify(last?.progress)} ${last?.state})`,
  );
  return last!;
}

/** A long plain-text document of `sections` headed parts of about `charsEach` characters. */
export function sampleDocument(sections: number, charsEach = 5_000, tag = ''): string {
  return Array.from({ length: sections }, (_, i) => {
    const sentence = `Pillar ${i + 1}${tag} of the improvement plan: goals, actions, owners and evidence for this area. `;
    return `# Part ${i + 1}\n\n${sentence.repeat(Math.ceil(charsEach / sentence.length))}`;
  }).join('\n\n');
}
