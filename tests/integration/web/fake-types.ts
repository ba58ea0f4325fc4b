/** What the fake master records and hands to a test. */
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import type {
  Ack,
  Hello,
  HelloReply,
  SocketSubmit,
  TaskEventName,
  TaskEventPayloads,
} from '../../../proto/src/socket-events.ts';

export interface Submission {
  taskId: string;
  sessionId: string;
  payload: SocketSubmit;
  /** Records a task event in the session's outbox and emits it stamped; returns its outboxSeq. */
  emit<E extends TaskEventName>(event: E, payload: TaskEventPayloads[E]): number;
}

export interface OutboxEvent {
  seq: number;
  name: TaskEventName;
  payload: TaskEventPayloads[TaskEventName];
}

/** One `session:hello` as the fake master saw and answered it. */
export interface HelloRecord {
  hello: Hello;
  reply: HelloReply;
  /** outboxSeq of each event re-sent because of `resume` (replay), in order. */
  replayed: number[];
  /** Events sent for `pending` because the outbox could not replay (resync). */
  resynced: OutboxEvent[];
}

export interface CancelRequest {
  taskId: string;
  sessionId: string;
  reply(answer: Ack<{ state: TaskView['state'] }>): void;
}

export interface SubmitRecord {
  clientId?: string;
  /** Absent when the submission was lost on its way in. */
  taskId?: string;
  /**
   * `ack`: accepted, but the ack was withheld and the socket closed, as if the
   * answer were lost; `submit`: ignored, as if it never arrived (no ack either).
   */
  dropped?: 'ack' | 'submit';
}

/** A `task:reprioritize` waiting for the test's answer. */
export interface ReprioritizeRequest {
  taskId: string;
  priority: number;
  sessionId: string;
  reply(answer: Ack<{ state: TaskView['state']; priority: number }>): void;
}

export interface Outbox {
  log: OutboxEvent[];
  next: number;
  /** Highest seq the client acked: events up to it are gone from the real outbox. */
  acked: number;
}
