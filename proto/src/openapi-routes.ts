/**
 * What each route of /api and /v1 takes and gives, by the names of the zod
 * schemas the master parses and types them with: the table openapi.ts
 * turns into the OpenAPI document.
 */
import type { z } from 'zod';
import {
  apiErrorSchema,
  IDEMPOTENCY_HEADER,
  idempotencyKeySchema,
  OPENAPI_PATH,
  SESSION_HEADER,
} from './http-api.ts';
import {
  credentialResponseSchema,
  emptyBodySchema,
  joinTokenRequestSchema,
  joinTokenResponseSchema,
  revokeResponseSchema,
} from './schemas/admin.ts';
import { auditPageSchema, auditQuerySchema } from './schemas/audit.ts';
import {
  alertsResponseSchema,
  seriesQuerySchema,
  seriesResponseSchema,
  taskListQuerySchema,
  taskPageSchema,
  taskTimelineSchema,
  usageQuerySchema,
  usageReportSchema,
} from './schemas/console.ts';
import {
  cordonResponseSchema,
  fleetStateSchema,
  fleetStopRequestSchema,
  workerCommandResponseSchema,
  workerConfigRequestSchema,
  workerSelectorSchema,
} from './schemas/fleet.ts';
import { metricsSnapshotSchema, workersResponseSchema } from './schemas/metrics.ts';
import { modelsResponseSchema } from './schemas/models.ts';
import {
  chatCompletionChunkSchema,
  chatCompletionRequestSchema,
  chatCompletionSchema,
  openAiErrorBodySchema,
  openAiModelListSchema,
  openAiModelSchema,
} from './schemas/openai.ts';
import {
  MAX_BATCH_BODY_BYTES,
  MAX_BATCH_TASKS,
  modelSchema,
  reprioritizeTaskSchema,
  submitTaskBatchResponseSchema,
  submitTaskBatchSchema,
  submitTaskResponseSchema,
  submitTaskSchema,
  taskIdSchema,
  taskViewSchema,
} from './schemas/task.ts';
import { workerIdSchema } from './schemas/worker.ts';
import { sessionIdSchema } from './socket-events.ts';

/** Request bodies as a client may send them (defaults optional); answers as they are sent. */
export const REQUEST_SCHEMAS = {
  SubmitTask: submitTaskSchema,
  SubmitTaskBatch: submitTaskBatchSchema,
  ReprioritizeTask: reprioritizeTaskSchema,
  JoinTokenRequest: joinTokenRequestSchema,
  EmptyBody: emptyBodySchema,
  WorkerSelector: workerSelectorSchema,
  WorkerConfigRequest: workerConfigRequestSchema,
  FleetStopRequest: fleetStopRequestSchema,
  ChatCompletionRequest: chatCompletionRequestSchema,
} satisfies Record<string, z.ZodType>;

export const RESPONSE_SCHEMAS = {
  ApiError: apiErrorSchema,
  SubmitTaskResponse: submitTaskResponseSchema,
  SubmitTaskBatchResponse: submitTaskBatchResponseSchema,
  TaskView: taskViewSchema,
  WorkersResponse: workersResponseSchema,
  ModelsResponse: modelsResponseSchema,
  MetricsSnapshot: metricsSnapshotSchema,
  JoinTokenResponse: joinTokenResponseSchema,
  CredentialResponse: credentialResponseSchema,
  RevokeResponse: revokeResponseSchema,
  CordonResponse: cordonResponseSchema,
  WorkerCommandResponse: workerCommandResponseSchema,
  FleetState: fleetStateSchema,
  AuditPage: auditPageSchema,
  TaskPage: taskPageSchema,
  TaskTimeline: taskTimelineSchema,
  UsageReport: usageReportSchema,
  SeriesResponse: seriesResponseSchema,
  AlertsResponse: alertsResponseSchema,
  ChatCompletion: chatCompletionSchema,
  ChatCompletionChunk: chatCompletionChunkSchema,
  OpenAiModelList: openAiModelListSchema,
  OpenAiModel: openAiModelSchema,
  OpenAiError: openAiErrorBodySchema,
} satisfies Record<string, z.ZodType>;

export type RequestName = keyof typeof REQUEST_SCHEMAS;
export type ResponseName = keyof typeof RESPONSE_SCHEMAS;

/** A route: its method and OpenAPI path, and what it takes and gives. */
export interface Route {
  method: 'get' | 'post' | 'patch' | 'delete';
  path: string;
  summary: string;
  tag:
    | 'tasks'
    | 'workers'
    | 'models'
    | 'fleet'
    | 'audit'
    | 'metrics'
    | 'alerts'
    | 'openai'
    | 'meta';
  /** `admin`: an admin token; `none`: open; default: any API token. */
  auth?: 'admin' | 'none';
  pathParams?: Record<string, z.ZodType>;
  query?: z.ZodObject;
  headers?: Record<string, { schema: z.ZodType; description: string }>;
  body?: { name: RequestName; required: boolean };
  /** Status → the schema of its JSON body and what it means. */
  responses: Record<string, { description: string; body?: ResponseName }>;
  /** With `stream: true` the 200 is server-sent events, each `data:` line one of these. */
  events?: ResponseName;
  /** With `format=csv` the 200 is CSV (`text/csv`), described by this. */
  csv?: string;
}

const ok = (body: ResponseName, description = 'done') => ({ '200': { description, body } });
export const apiError = (description: string) => ({ description, body: 'ApiError' as const });
export const openAiError = (description: string) => ({ description, body: 'OpenAiError' as const });
/** The headers a submission may carry; what its Idempotency-Key names differs. */
const submitHeaders = (idempotency: string) => ({
  [SESSION_HEADER]: {
    schema: sessionIdSchema,
    description: "the caller's session: its tasks share a fairness round and its events",
  },
  [IDEMPOTENCY_HEADER]: { schema: idempotencyKeySchema, description: idempotency },
});
const taskId = { id: taskIdSchema };
const workerId = { id: workerIdSchema };
const workerCommandErrors = {
  '400': apiError('bad worker id or body'),
  '404': apiError('no such worker'),
  '409': apiError('the worker is offline (`worker_offline`)'),
  '422': apiError('the worker refused the command (`worker_refused`)'),
  '504': apiError('the worker did not acknowledge in time (`not_acknowledged`)'),
};
const workerCommand = (command: string, summary: string): Route => ({
  method: 'post',
  path: `/api/workers/{id}/${command}`,
  summary,
  tag: 'fleet',
  auth: 'admin',
  pathParams: workerId,
  body: { name: 'EmptyBody', required: false },
  responses: { ...ok('WorkerCommandResponse', 'the worker acknowledged'), ...workerCommandErrors },
});
const cordon = (command: 'drain' | 'resume', summary: string): Route => ({
  method: 'post',
  path: `/api/workers/${command}`,
  summary,
  tag: 'fleet',
  auth: 'admin',
  body: { name: 'WorkerSelector', required: true },
  responses: {
    ...ok('CordonResponse', 'each matching worker, acknowledged or not'),
    '400': apiError('bad selector'),
  },
});

/** Every route the master serves under /api and /v1. */
export const API_ROUTES: readonly Route[] = [
  {
    method: 'get',
    path: OPENAPI_PATH,
    summary: 'This document',
    tag: 'meta',
    auth: 'none',
    responses: { '200': { description: 'the OpenAPI 3.1 document' } },
  },
  {
    method: 'post',
    path: '/api/tasks',
    summary: 'Submit a task',
    tag: 'tasks',
    headers: submitHeaders('the same key always names the same task'),
    body: { name: 'SubmitTask', required: true },
    responses: {
      '202': { description: 'queued; `Location` names the task', body: 'SubmitTaskResponse' },
      '400': apiError('invalid body or header, or `unknown_model`'),
      '429': apiError('`rate_limited` or `queue_full`'),
      '503': apiError('the queue store is unavailable'),
    },
  },
  {
    method: 'post',
    path: '/api/tasks/batch',
    summary: `Submit up to ${MAX_BATCH_TASKS} tasks in one request (body up to ${MAX_BATCH_BODY_BYTES / 1_048_576} MB)`,
    tag: 'tasks',
    headers: submitHeaders(
      'the same key always names the same tasks (task i is keyed `<key>#i`): a retry adds only what is missing',
    ),
    body: { name: 'SubmitTaskBatch', required: true },
    responses: {
      '202': {
        description:
          'one entry per task, in order: its id, or why it was not queued (`unknown_model`, `queue_full`, `unavailable`)',
        body: 'SubmitTaskBatchResponse',
      },
      '400': apiError('invalid body (the path names the task) or header'),
      '413': apiError('body larger than the batch limit (`too_large`)'),
      '429': apiError('`rate_limited`: a batch of N counts as N requests; nothing was added'),
    },
  },
  {
    method: 'get',
    path: '/api/tasks',
    summary: 'The task history: newest first, filtered, a page at a time (JSON or CSV)',
    tag: 'tasks',
    query: taskListQuerySchema,
    csv: 'The same page: a header row, then one row per task; sent as the attachment flota-tasks.csv, `X-Next-Cursor` naming the next page.',
    responses: {
      ...ok('TaskPage', 'a page of tasks (a user token: its own tenant only)'),
      '400': apiError('bad query or cursor'),
    },
  },
  {
    method: 'get',
    path: '/api/tasks/{id}/timeline',
    summary: "A task's timeline: queued, assigned, retried, re-prioritized, ended",
    tag: 'tasks',
    pathParams: taskId,
    responses: {
      ...ok('TaskTimeline', 'the task and its events, oldest first'),
      '400': apiError('bad task id'),
      '404': apiError('no such task in the history'),
    },
  },
  {
    method: 'post',
    path: '/api/tasks/{id}/retry',
    summary: 'Submit a failed or cancelled task again, as a new task',
    tag: 'tasks',
    pathParams: taskId,
    responses: {
      '202': { description: 'queued; `Location` names the new task', body: 'SubmitTaskResponse' },
      '400': apiError('bad task id, or its model is no longer known (`unknown_model`)'),
      '404': apiError('no such task (the store keeps failed tasks 7 days)'),
      '409': apiError('the task is queued, running or completed'),
    },
  },
  {
    method: 'get',
    path: '/api/usage',
    summary: 'Usage of finished tasks, summed per tenant, model, worker, hour or day (JSON or CSV)',
    tag: 'tasks',
    query: usageQuerySchema,
    csv: 'The same rows: a header row, then one row per group; sent as the attachment flota-usage.csv.',
    responses: {
      ...ok('UsageReport', 'the sums (a user token: its own tenant only)'),
      '400': apiError('bad query'),
    },
  },
  {
    method: 'get',
    path: '/api/tasks/{id}',
    summary: 'A task: state, result or error, worker, timings',
    tag: 'tasks',
    pathParams: taskId,
    responses: {
      ...ok('TaskView', 'the task'),
      '400': apiError('bad task id'),
      '404': apiError('no such task'),
    },
  },
  {
    method: 'patch',
    path: '/api/tasks/{id}',
    summary: 'Move a queued task to another priority',
    tag: 'tasks',
    pathParams: taskId,
    body: { name: 'ReprioritizeTask', required: true },
    responses: {
      ...ok('TaskView', 'the task, moved'),
      '400': apiError('bad task id or body'),
      '404': apiError('no such task'),
      '409': apiError('the task runs or has finished'),
    },
  },
  {
    method: 'delete',
    path: '/api/tasks/{id}',
    summary: 'Cancel a queued or running task',
    tag: 'tasks',
    pathParams: taskId,
    responses: {
      ...ok('TaskView', 'the task, cancelled'),
      '400': apiError('bad task id'),
      '404': apiError('no such task'),
      '409': apiError('the task had already finished'),
    },
  },
  {
    method: 'get',
    path: '/api/workers',
    summary: 'The workers the master knows, and the models they serve',
    tag: 'workers',
    responses: ok('WorkersResponse', 'the workers'),
  },
  {
    method: 'get',
    path: '/api/models',
    summary: 'Each model: who serves it, who has it loaded, free slots',
    tag: 'models',
    responses: ok('ModelsResponse', 'the models'),
  },
  {
    method: 'get',
    path: '/api/metrics',
    summary: 'The facts of the Prometheus metrics, as JSON',
    tag: 'metrics',
    responses: ok('MetricsSnapshot', 'the metrics'),
  },
  {
    method: 'post',
    path: '/api/workers/join-tokens',
    summary: 'Issue a join token for worker ids with a prefix',
    tag: 'fleet',
    auth: 'admin',
    body: { name: 'JoinTokenRequest', required: true },
    responses: {
      '201': { description: 'the join token (never shown again)', body: 'JoinTokenResponse' },
      '400': apiError('bad prefix'),
    },
  },
  {
    method: 'post',
    path: '/api/workers/{id}/credential',
    summary: "Issue a worker's own credential",
    tag: 'fleet',
    auth: 'admin',
    pathParams: workerId,
    body: { name: 'EmptyBody', required: false },
    responses: {
      '201': { description: 'the credential (never shown again)', body: 'CredentialResponse' },
      '400': apiError('bad worker id or body'),
    },
  },
  {
    method: 'post',
    path: '/api/workers/{id}/revoke',
    summary: "Revoke a worker's credentials and disconnect it",
    tag: 'fleet',
    auth: 'admin',
    pathParams: workerId,
    body: { name: 'EmptyBody', required: false },
    responses: { ...ok('RevokeResponse', 'revoked'), '400': apiError('bad worker id or body') },
  },
  cordon('drain', 'Cordon: drain every worker of a kind or with labels, now and when they join'),
  cordon('resume', 'Lift a cordon'),
  workerCommand('drain', 'Drain a worker: it finishes what runs and takes nothing new'),
  workerCommand('resume', 'Resume a drained worker'),
  workerCommand('stop', 'Stop a worker gracefully'),
  workerCommand('restart', 'Restart a worker gracefully'),
  {
    method: 'patch',
    path: '/api/workers/{id}/config',
    summary: "Change a worker's slots, models, weight or labels while it runs",
    tag: 'fleet',
    auth: 'admin',
    pathParams: workerId,
    body: { name: 'WorkerConfigRequest', required: true },
    responses: { ...ok('WorkerCommandResponse', 'the worker applied it'), ...workerCommandErrors },
  },
  {
    method: 'get',
    path: '/api/fleet',
    summary: 'Dispatch state, drained workers, cordons',
    tag: 'fleet',
    auth: 'admin',
    responses: ok('FleetState', 'the fleet'),
  },
  {
    method: 'post',
    path: '/api/fleet/stop',
    summary: 'Stop all dispatch (the emergency stop)',
    tag: 'fleet',
    auth: 'admin',
    body: { name: 'FleetStopRequest', required: false },
    responses: { ...ok('FleetState', 'dispatch stopped'), '400': apiError('bad body') },
  },
  {
    method: 'post',
    path: '/api/fleet/resume',
    summary: 'Resume dispatch',
    tag: 'fleet',
    auth: 'admin',
    body: { name: 'EmptyBody', required: false },
    responses: { ...ok('FleetState', 'dispatch resumed'), '400': apiError('bad body') },
  },
  {
    method: 'get',
    path: '/api/audit',
    summary: 'The audit trail, newest first, a page at a time',
    tag: 'audit',
    auth: 'admin',
    query: auditQuerySchema,
    responses: { ...ok('AuditPage', 'a page of records'), '400': apiError('bad query') },
  },
  {
    method: 'get',
    path: '/api/series',
    summary: 'The live series: one point per second, older ones from Prometheus',
    tag: 'metrics',
    auth: 'admin',
    query: seriesQuerySchema,
    csv: 'A header row, then one row per point; a `queued:<queue>` column per queue; sent as the attachment flota-metrics.csv.',
    responses: {
      ...ok('SeriesResponse', 'the points, oldest first'),
      '400': apiError('bad query'),
    },
  },
  {
    method: 'get',
    path: '/api/alerts',
    summary: 'Alerts firing now, and the latest that resolved',
    tag: 'alerts',
    auth: 'admin',
    responses: ok('AlertsResponse', 'the alerts'),
  },
  {
    method: 'post',
    path: '/v1/chat/completions',
    summary: 'OpenAI-compatible chat completion, whole or streamed',
    tag: 'openai',
    body: { name: 'ChatCompletionRequest', required: true },
    events: 'ChatCompletionChunk',
    responses: {
      '200': { description: 'the answer (see also the stream below)', body: 'ChatCompletion' },
      '400': openAiError('invalid request'),
      '404': openAiError('no worker serves the model (`model_not_found`)'),
      '409': openAiError('the task was cancelled (`task_cancelled`)'),
      '502': openAiError('the task failed (`task_failed`)'),
    },
  },
  {
    method: 'get',
    path: '/v1/models',
    summary: 'The models online workers serve now',
    tag: 'openai',
    responses: ok('OpenAiModelList', 'the models'),
  },
  {
    method: 'get',
    path: '/v1/models/{model}',
    summary: 'One model online workers serve now',
    tag: 'openai',
    pathParams: { model: modelSchema },
    responses: {
      ...ok('OpenAiModel', 'the model'),
      '404': openAiError('no online worker serves it'),
    },
  },
];
