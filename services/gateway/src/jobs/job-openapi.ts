import { z } from 'zod';
import { JobEventSchema, JobListSchema, JobSubmitSchema, JobViewSchema } from '@actionedx/shared';

const doc = (schema: z.ZodType, io: 'input' | 'output') => z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: object) => ({ 'application/json': { schema } });
const error = (description: string) => ({ description, content: json(ref('Error')) });
const userId = { name: 'user_id', in: 'query', required: true, schema: { type: 'string', maxLength: 128 }, description: 'The caller (until authentication replaces it)' };
const jobId = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };

/** The job schemas, generated from the zod schemas that validate them. */
export function jobSchemasDoc(): Record<string, unknown> {
  return {
    JobSubmit: doc(JobSubmitSchema, 'input'),
    Job: doc(JobViewSchema, 'output'),
    JobList: doc(JobListSchema, 'output'),
    JobEvent: doc(JobEventSchema, 'output'),
  };
}

/** `/api/jobs` and its sub-paths. */
export function jobPathsDoc(): Record<string, unknown> {
  const unavailable = error('No queue Redis configured, the queue Redis is down or evicts keys (`jobs_unavailable`, retryable)');
  return {
    '/api/jobs': {
      post: {
        summary: 'Submit a background job (202 with the job and a Location header)',
        requestBody: { required: true, content: json(ref('JobSubmit')) },
        responses: {
          '202': { description: 'Queued', headers: { Location: { schema: { type: 'string' } } }, content: json(ref('Job')) },
          '400': error('Invalid input (`unknown_job_kind`, `too_many_items`, `webhook_not_allowed`, `validation_failed`, ...)'),
          '413': error('Body over JOB_BODY_LIMIT_BYTES'),
          '503': unavailable,
        },
      },
      get: {
        summary: "The caller's jobs, newest first (without results)",
        parameters: [
          userId,
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 } },
          { name: 'offset', in: 'query', schema: { type: 'integer', minimum: 0, default: 0 } },
        ],
        responses: { '200': { description: 'A page', content: json(ref('JobList')) }, '503': unavailable },
      },
    },
    '/api/jobs/{id}': {
      get: {
        summary: 'A job: state, progress, result, error, usage, cost',
        parameters: [jobId, userId],
        responses: { '200': { description: 'The job', content: json(ref('Job')) }, '404': error('No such job, or not the caller\u2019s'), '503': unavailable },
      },
      delete: {
        summary: 'Cancel a job: 200 when it has ended (a queued job), 202 while its running step is being stopped',
        parameters: [jobId, userId],
        responses: {
          '200': { description: 'Cancelled', content: json(ref('Job')) },
          '202': { description: 'Its worker was told to stop', content: json(ref('Job')) },
          '404': error('No such job, or not the caller\u2019s'),
          '409': error('The job has already completed or failed (`job_finished`)'),
          '503': unavailable,
        },
      },
    },
    '/api/jobs/{id}/events': {
      get: {
        summary: "The job's events as Server-Sent Events (event = type, id = seq; Last-Event-ID resumes); ends after job_done or job_failed",
        parameters: [jobId, userId, { name: 'Last-Event-ID', in: 'header', schema: { type: 'integer' } }],
        responses: {
          '200': { description: 'Events `job_progress`, `job_done`, `job_failed`, each a JobEvent', content: { 'text/event-stream': { schema: ref('JobEvent') } } },
          '404': error('No such job, or not the caller\u2019s'),
          '503': unavailable,
        },
      },
    },
  };
}
