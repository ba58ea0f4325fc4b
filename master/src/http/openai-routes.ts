/**
 * The OpenAI-compatible API under `/v1`, on the master's own port and behind
 * the same origin check, tokens, tenants, rate limit and queue as `/api`:
 *
 * - `POST /v1/chat/completions`: one task per request, answered whole or as
 *   server-sent events (`stream: true`) in OpenAI's chunk shape, ending with
 *   `data: [DONE]`. A client that goes away cancels its task.
 * - `GET /v1/models`, `GET /v1/models/:id`: the models online workers serve
 *   now, with the registry's view of each (`GET /api/models`) as `flota`.
 *
 * When an attempt dies and the task runs again, the next attempt continues
 * the answer where the worker can, and the stream carries on without
 * repeating what the client has; where the worker cannot, one chunk with
 * `flota.restarted` announces that the answer starts over.
 */
import type { Request, Response, Router } from 'express';
import express from 'express';
import { NotFoundError } from '../../../common/errors.ts';
import type { Logger } from '../../../common/logger.ts';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  OpenAiModel,
  OpenAiModelList,
  OpenAiUsage,
} from '../../../proto/src/schemas/openai.ts';
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import type { TaskAssignedEvent, TaskChunkEvent } from '../../../proto/src/socket-events.ts';
import type { WorkerRegistry } from '../registry/registry.ts';
import type { TaskService } from '../tasks/task-service.ts';
import type { TaskWatch } from '../tasks/task-watch.ts';
import { taskScopeOf, tenantOfResponse } from './auth.ts';
import { openAiError } from './openai-errors.ts';
import { optionsFromHeaders, parseChatRequest, toSubmission } from './openai-request.ts';

/** A comment line on an open stream this often, so proxies keep a long wait open. */
export const SSE_KEEPALIVE_MS = 15_000;

export interface OpenAiRoutesDeps {
  tasks: TaskService;
  watch: TaskWatch;
  registry: WorkerRegistry;
  log: Logger;
}

const completionId = (taskId: string) => `chatcmpl-${taskId}`;
const seconds = (ms: number) => Math.floor(ms / 1000);

/** The provider's counts, or the worker's where the provider gave none (marked `estimated`). */
function usageOf(task: TaskView): OpenAiUsage | undefined {
  if (!task.usage) return undefined;
  const { inputTokens, outputTokens, estimated } = task.usage;
  return {
    prompt_tokens: inputTokens,
    completion_tokens: outputTokens,
    total_tokens: inputTokens + outputTokens,
    ...(estimated && { estimated }),
  };
}

/** Why a task ended without an answer, as an OpenAI error (type, code, HTTP status). */
function endedWithout(task: TaskView) {
  const message = task.error ?? `the task ended ${task.state}`;
  return task.state === 'cancelled'
    ? { status: 409, body: openAiError(message, 'invalid_request_error', 'task_cancelled') }
    : { status: 502, body: openAiError(message, 'server_error', 'task_failed') };
}

/**
 * The text of a task as the client should see it: the newest attempt's text
 * (what it continues, then its chunks in order), never what was already
 * sent again.
 */
class AnswerText {
  private attempt = 0;
  private attemptText = '';
  private nextSeq = 0;
  /** Everything sent so far. */
  sent = '';

  /**
   * A new attempt starts: it continues the answer (new text to send, if the
   * continued text is ahead of what was sent), or it starts over after text
   * was sent (`restarted`: the client is told, and everything is sent anew).
   */
  assigned(event: TaskAssignedEvent): { more: string } | { restarted: true } {
    if (event.attempt <= this.attempt) return { more: '' };
    this.begin(event.attempt, event.continuesFrom ?? '');
    if (event.continuesFrom !== undefined || this.sent === '') {
      return { more: this.take(this.attemptText) };
    }
    this.sent = '';
    return { restarted: true };
  }

  /** New text to send for this chunk, if any. */
  chunk(event: TaskChunkEvent): string {
    if (event.attempt < this.attempt) return '';
    if (event.attempt > this.attempt) this.begin(event.attempt, '');
    // A gap (a chunk lost or out of order) waits for the final answer.
    if (event.seq !== this.nextSeq) return '';
    this.nextSeq += 1;
    this.attemptText += event.text;
    return this.take(this.attemptText);
  }

  /** What the final answer adds to what was sent. */
  final(text: string): string {
    return this.take(text);
  }

  private begin(attempt: number, continued: string): void {
    this.attempt = attempt;
    this.attemptText = continued;
    this.nextSeq = 0;
  }

  private take(text: string): string {
    if (text.length <= this.sent.length) return '';
    const more = text.slice(this.sent.length);
    this.sent += more;
    return more;
  }
}

export function openAiRoutes(deps: OpenAiRoutesDeps): Router {
  const log = deps.log.child({ component: 'openai' });
  const router = express.Router();

  router.get('/models', (_req, res) => {
    const body: OpenAiModelList = { object: 'list', data: liveModels(deps.registry) };
    res.json(body);
  });

  router.get('/models/:model', (req, res) => {
    const model = liveModels(deps.registry).find((m) => m.id === req.params.model);
    if (!model)
      throw new NotFoundError(`no online worker serves model ${JSON.stringify(req.params.model)}`);
    res.json(model);
  });

  router.post('/chat/completions', async (req, res) => {
    const request = parseChatRequest(req.body);
    const submission = toSubmission(
      request,
      optionsFromHeaders((name) => req.get(name)),
    );
    const scope = taskScopeOf(res);
    const { taskId } = await deps.tasks.submit(submission, { tenant: tenantOfResponse(res) });
    const answer = new AnswerText();
    const stream = request.stream === true;
    const includeUsage = request.stream_options?.include_usage === true;
    let created = seconds(Date.now());
    let done = false;
    let stopWatching = () => {};
    let keepalive: NodeJS.Timeout | undefined;

    const finish = () => {
      done = true;
      stopWatching();
      if (keepalive) clearInterval(keepalive);
    };
    // A client that goes away cancels its task (as closing the chat tab does not: that is a session).
    res.on('close', () => {
      if (done) return;
      finish();
      log.info({ taskId }, 'client went away: cancelling its task');
      deps.tasks.cancel(taskId, scope).catch(() => undefined);
    });

    const chunkOf = (
      delta: ChatCompletionChunk['choices'][0]['delta'],
      finishReason: 'stop' | null,
    ) => {
      const chunk: ChatCompletionChunk = {
        id: completionId(taskId),
        object: 'chat.completion.chunk',
        created,
        model: request.model,
        choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
        system_fingerprint: null,
        ...(includeUsage && { usage: null }),
      };
      return chunk;
    };
    const send = (payload: unknown) => res.write(`data: ${JSON.stringify(payload)}\n\n`);

    const ended = (task: TaskView) => {
      if (done) return;
      finish();
      created = seconds(task.timings.submittedAt);
      if (task.state !== 'completed') {
        const { status, body } = endedWithout(task);
        if (!stream) return void res.status(status).json(body);
        send(body);
        return void res.end();
      }
      const text = task.result ?? '';
      if (!text.startsWith(answer.sent)) {
        log.warn(
          { taskId, attempt: task.attempt },
          'the final answer differs from what was streamed',
        );
      }
      const rest = answer.final(text);
      const usage = usageOf(task);
      if (!stream) {
        const body: ChatCompletion = {
          id: completionId(taskId),
          object: 'chat.completion',
          created,
          model: request.model,
          choices: [
            {
              index: 0,
              message: { role: 'assistant', content: text, refusal: null },
              logprobs: null,
              finish_reason: 'stop',
            },
          ],
          ...(usage && { usage }),
          system_fingerprint: null,
          flota: flotaInfo(task),
        };
        return void res.json(body);
      }
      if (rest) send(chunkOf({ content: rest }, null));
      send(chunkOf({}, 'stop'));
      if (includeUsage) send({ ...chunkOf({}, null), choices: [], usage: usage ?? null });
      res.end('data: [DONE]\n\n');
    };

    if (stream) {
      res.status(200);
      res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
      res.setHeader('Cache-Control', 'no-cache, no-transform');
      res.setHeader('X-Accel-Buffering', 'no');
      res.flushHeaders();
      send(chunkOf({ role: 'assistant', content: '' }, null));
      keepalive = setInterval(() => res.write(': keep-alive\n\n'), SSE_KEEPALIVE_MS);
    }
    stopWatching = deps.watch.watch(taskId, {
      assigned: (event) => {
        const next = answer.assigned(event);
        if (!stream || done) return;
        if ('restarted' in next) {
          send({ ...chunkOf({}, null), flota: { restarted: { attempt: event.attempt } } });
        } else if (next.more) send(chunkOf({ content: next.more }, null));
      },
      chunk: (event) => {
        const more = answer.chunk(event);
        if (more && stream && !done) send(chunkOf({ content: more }, null));
      },
      ended,
    });
    // It may have ended already (an answer from the cache is there before the watch).
    const now = await deps.tasks.get(taskId, scope).catch(() => undefined);
    if (now && ['completed', 'failed', 'cancelled'].includes(now.state)) ended(now);
  });

  router.use((_req: Request, res: Response) => {
    res.status(404).json({ error: 'no such API route', code: 'not_found' });
  });
  return router;
}

function flotaInfo(task: TaskView): ChatCompletion['flota'] {
  return {
    taskId: task.id,
    attempt: task.attempt,
    ...(task.workerId && { workerId: task.workerId }),
    ...(task.workerKind && { workerKind: task.workerKind }),
    ...(task.cache && { cached: true }),
  };
}

/** The models online workers serve now, from the registry's model view (as `GET /api/models`). */
function liveModels(registry: WorkerRegistry): OpenAiModel[] {
  return registry.modelEntries().map(({ name, ...flota }) => ({
    id: name,
    object: 'model',
    created: 0,
    owned_by: 'flota',
    flota,
  }));
}
