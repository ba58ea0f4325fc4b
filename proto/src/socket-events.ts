/**
 * The Socket.IO contract between the chat UI and the master. Event names are
 * written here only; payloads are zod schemas (client → server ones are
 * parsed by the master, server → client ones by tests).
 */
import { z } from 'zod';
import {
  conversationFits,
  storableText,
  submitTaskFields,
  type TaskView,
  taskIdSchema,
} from './schemas/task.ts';
import type { WorkerView } from './schemas/worker.ts';

export const SOCKET_PATH = '/socket.io';

export const sessionIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{8,64}$/, 'sessionId: 8-64 of A-Z a-z 0-9 _ -');

/** Largest number of unfinished task ids a client may ask about in one hello. */
export const MAX_PENDING_IN_HELLO = 500;

/**
 * `session:hello`, sent on every (re)connect. `resume` names the outbox position
 * the client has processed (the epoch it came from and the last `outboxSeq`);
 * `pending` lists tasks the client still waits for, so a master that lost its
 * outbox (restart) can send their current state from the store.
 */
export const helloSchema = z
  .object({
    sessionId: sessionIdSchema,
    resume: z
      .object({
        epoch: z.string().min(1).max(64),
        lastSeq: z.number().int().nonnegative(),
      })
      .strict()
      .optional(),
    pending: z.array(taskIdSchema).max(MAX_PENDING_IN_HELLO).optional(),
  })
  .strict();
export type Hello = z.infer<typeof helloSchema>;

/** `session:ack`: the client has processed every outbox event up to `seq`. */
export const sessionAckSchema = z.object({ seq: z.number().int().nonnegative() }).strict();

/** `task:cancel`: cancel one of this session's tasks, queued or running. */
export const taskCancelSchema = z.object({ taskId: taskIdSchema }).strict();

/** `task:reprioritize`: move one of this session's queued tasks to another priority (0–1000). */
export const taskReprioritizeSchema = z
  .object({ taskId: taskIdSchema, priority: submitTaskFields.shape.priority.unwrap() })
  .strict();

/** `task:submit`: a submission plus the client's own id so it can match the ack. */
export const socketSubmitSchema = submitTaskFields
  .extend({ clientId: storableText(z.string().min(1).max(64)).optional() })
  .superRefine(conversationFits);
export type SocketSubmit = z.infer<typeof socketSubmitSchema>;

/**
 * A refusal names its reason (`error`), and when the master knows it a
 * `code` (as in REST error bodies: rate_limited, queue_full, unknown_model,
 * bad_request, not_found, conflict, unavailable) and, for rate_limited, the
 * seconds to wait.
 */
export type Ack<T> =
  | ({ ok: true } & T)
  | { ok: false; error: string; code?: string; retryAfterS?: number };

export interface HelloReply {
  sessionId: string;
  /**
   * The outbox epoch: changes when the master restarts. A client whose stored
   * epoch differs starts counting `outboxSeq` afresh (lastSeq = 0).
   */
  epoch: string;
  /**
   * How the master answered `resume`: `replay` re-sent every event after
   * lastSeq; `resync` could not (new epoch, or events already dropped), so it
   * sends the current state of each `pending` task instead.
   */
  resumed: 'fresh' | 'replay' | 'resync';
  workers: WorkerView[];
  models: string[];
  fleet: FleetSummary;
}

/**
 * Every task event to a session carries its place in the session's outbox.
 * Numbers only grow within an epoch; gaps are allowed (superseded chunks are
 * dropped once their task ends). A client ignores an event whose outboxSeq is
 * not above the last one it processed, and acks what it processed.
 */
export interface OutboxStamp {
  outboxSeq: number;
}

export interface TaskQueuedEvent {
  taskId: string;
  clientId?: string;
  /** Why it has not started yet, when the master knows (e.g. no worker serves the model). */
  waitingFor?: string;
}
/**
 * The attempt ended without an answer and the task waits for another worker.
 * What it streamed stays on screen until the next attempt's `task:assigned`
 * says whether that attempt continues it or starts over.
 */
export interface TaskRetryingEvent {
  taskId: string;
  /** The attempt that was lost; the next one is attempt + 1. */
  attempt: number;
  reason: string;
}
export interface TaskAssignedEvent {
  taskId: string;
  attempt: number;
  workerId: string;
  workerKind: 'cpu' | 'gpu';
  /**
   * A new attempt after a lost one either continues the answer (this is the
   * text it carries on from: show it, then append this attempt's chunks) or,
   * where the worker cannot continue, starts over (absent: clear the text).
   */
  continuesFrom?: string;
}
export interface TaskChunkEvent {
  taskId: string;
  attempt: number;
  seq: number;
  text: string;
}
/** Most worker cards a panel update carries (online ones first, by id); `fleet` counts them all. */
export const MAX_PANEL_WORKERS = 200;

/** The whole fleet in numbers, however many workers the panel lists. */
export interface FleetSummary {
  online: number;
  offline: number;
  /** Slots of online workers, and the tasks the master has assigned to them. */
  slots: number;
  active: number;
  /** Each model online workers serve (the chat UI's model picker). */
  models: Record<string, FleetModel>;
}

/** One model in the fleet summary. */
export interface FleetModel {
  /** Online workers serving it, by kind. */
  cpu: number;
  gpu: number;
  /** Some worker runs it locally: it answers at once only where it is loaded. */
  local: boolean;
  /** Online workers holding it in memory now (0 for a model no worker runs locally). */
  loaded: number;
}

/**
 * The worker panel: at most MAX_PANEL_WORKERS cards (online first, by id),
 * the models online workers serve, and the fleet summary.
 */
export interface WorkersUpdateEvent {
  workers: WorkerView[];
  models: string[];
  fleet: FleetSummary;
}

export interface ClientToServerEvents {
  'session:hello': (payload: unknown, ack: (reply: Ack<HelloReply>) => void) => void;
  'session:ack': (payload: unknown) => void;
  /** Idempotent per (session, clientId): a retried submit returns the same taskId. */
  'task:submit': (payload: unknown, ack: (reply: Ack<{ taskId: string }>) => void) => void;
  'task:cancel': (
    payload: unknown,
    ack: (reply: Ack<{ state: TaskView['state'] }>) => void,
  ) => void;
  /** Refused (ok: false) once the task runs or has finished. */
  'task:reprioritize': (
    payload: unknown,
    ack: (reply: Ack<{ state: TaskView['state']; priority: number }>) => void,
  ) => void;
}

/** The task events, as the session outbox records them (name → payload without the stamp). */
export interface TaskEventPayloads {
  'task:queued': TaskQueuedEvent;
  'task:assigned': TaskAssignedEvent;
  'task:chunk': TaskChunkEvent;
  'task:retrying': TaskRetryingEvent;
  /** Terminal events: at most one per task per session. */
  'task:completed': TaskView;
  /** state `failed` or `cancelled` (cancelled by a user, or timed out: see `error`). */
  'task:failed': TaskView;
}
export type TaskEventName = keyof TaskEventPayloads;
/** A key per task event, so the list below can neither miss one nor add one. */
const TASK_EVENT_KEYS: Record<TaskEventName, true> = {
  'task:queued': true,
  'task:assigned': true,
  'task:chunk': true,
  'task:retrying': true,
  'task:completed': true,
  'task:failed': true,
};
/** Every task event name (inside a `task:events` batch); the browser's list (web/js/connection.js) is tested against it. */
export const TASK_EVENT_NAMES = Object.keys(TASK_EVENT_KEYS) as TaskEventName[];
export const TERMINAL_TASK_EVENTS: readonly TaskEventName[] = ['task:completed', 'task:failed'];

/** One task event as it travels: its name and its payload, stamped with its place in the outbox. */
export type StampedTaskEvent = {
  [K in TaskEventName]: { name: K; payload: TaskEventPayloads[K] & OutboxStamp };
}[TaskEventName];

/**
 * `task:events`: the task events for one session that the master produced in
 * one turn of its event loop, in outbox order, as one message. Under load a
 * task's queued, assigned, chunk and completed events, and many tasks' events,
 * share one frame instead of one each. A chunk whose task ended within the
 * same turn is left out: the terminal event carries the whole answer.
 */
export interface TaskEventBatch {
  events: StampedTaskEvent[];
}
export const TASK_EVENTS_BATCH = 'task:events';

export type ServerToClientEvents = {
  'task:events': (batch: TaskEventBatch) => void;
  'workers:update': (event: WorkersUpdateEvent) => void;
};

/** Every event name the server sends. */
export const SERVER_EVENT_NAMES: ReadonlyArray<keyof ServerToClientEvents> = [
  TASK_EVENTS_BATCH,
  'workers:update',
];

/** Room a session's sockets join; results are emitted to it, so every tab of a session sees them. */
export const sessionRoom = (sessionId: string) => `session:${sessionId}`;

export { taskIdSchema };

/** Every event name a client may send; anything else is answered with an ack error. */
export const CLIENT_EVENT_NAMES = [
  'session:hello',
  'session:ack',
  'task:submit',
  'task:cancel',
  'task:reprioritize',
] as const satisfies ReadonlyArray<keyof ClientToServerEvents>;
