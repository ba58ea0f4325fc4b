/**
 * The Socket.IO contract between the chat UI and the master. Event names are
 * written here only; payloads are zod schemas (client → server ones are
 * parsed by the master, server → client ones by tests).
 */
import { z } from 'zod';
import { conversationFits, submitTaskFields, type TaskView, taskIdSchema } from './schemas/task.ts';
import type { WorkerView } from './schemas/worker.ts';

export const SOCKET_PATH = '/socket.io';

export const sessionIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{8,64}$/, 'sessionId: 8-64 of A-Z a-z 0-9 _ -');

export const helloSchema = z.object({ sessionId: sessionIdSchema }).strict();
export type Hello = z.infer<typeof helloSchema>;

/** `task:submit`: a submission plus the client's own id so it can match the ack. */
export const socketSubmitSchema = submitTaskFields
  .extend({ clientId: z.string().min(1).max(64).optional() })
  .superRefine(conversationFits);
export type SocketSubmit = z.infer<typeof socketSubmitSchema>;

export type Ack<T> = ({ ok: true } & T) | { ok: false; error: string };

export interface HelloReply {
  sessionId: string;
  workers: WorkerView[];
  models: string[];
}

export interface TaskQueuedEvent {
  taskId: string;
  clientId?: string;
  /** Why it has not started yet, when the master knows (e.g. no worker serves the model). */
  waitingFor?: string;
}
export interface TaskAssignedEvent {
  taskId: string;
  attempt: number;
  workerId: string;
  workerKind: 'cpu' | 'gpu';
}
export interface TaskChunkEvent {
  taskId: string;
  attempt: number;
  seq: number;
  text: string;
}
export interface WorkersUpdateEvent {
  workers: WorkerView[];
  models: string[];
}

export interface ClientToServerEvents {
  'session:hello': (payload: unknown, ack: (reply: Ack<HelloReply>) => void) => void;
  'task:submit': (payload: unknown, ack: (reply: Ack<{ taskId: string }>) => void) => void;
}

export interface ServerToClientEvents {
  'task:queued': (event: TaskQueuedEvent) => void;
  'task:assigned': (event: TaskAssignedEvent) => void;
  'task:chunk': (event: TaskChunkEvent) => void;
  'task:completed': (task: TaskView) => void;
  'task:failed': (task: TaskView) => void;
  'workers:update': (event: WorkersUpdateEvent) => void;
}

/** Room a session's sockets join; results are emitted to it, so every tab of a session sees them. */
export const sessionRoom = (sessionId: string) => `session:${sessionId}`;

export { taskIdSchema };
