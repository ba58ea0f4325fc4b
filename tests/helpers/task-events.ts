/**
 * Task events as a test reads them: the master sends them in `task:events`
 * batches (proto/src/socket-events.ts); these helpers hand them out one by
 * one, in order, by name.
 */
import type {
  OutboxStamp,
  TaskEventName,
  TaskEventPayloads,
} from '../../proto/src/socket-events.ts';

/** Any Socket.IO client socket; its typed event map does not matter here. */
interface Listening {
  on(event: string, listener: (payload: never) => void): unknown;
}

type Stamped<K extends TaskEventName> = TaskEventPayloads[K] & OutboxStamp;

/** Calls `handler` with every task event the socket receives, in order. */
export function onTaskEvents(
  socket: Listening,
  handler: (name: TaskEventName, payload: Stamped<TaskEventName>) => void,
): void {
  socket.on('task:events', (batch: { events?: Array<{ name: TaskEventName; payload: never }> }) => {
    for (const event of batch?.events ?? []) handler(event.name, event.payload);
  });
}

/** Calls `handler` with every task event of one name the socket receives. */
export function onTaskEvent<K extends TaskEventName>(
  socket: Listening,
  name: K,
  handler: (payload: Stamped<K>) => void,
): void {
  onTaskEvents(socket, (got, payload) => {
    if (got === name) handler(payload as unknown as Stamped<K>);
  });
}

/** The next task event of one name the socket receives. */
export function nextTaskEvent<K extends TaskEventName>(
  socket: Listening,
  name: K,
): Promise<Stamped<K>> {
  return new Promise((resolve) => {
    let done = false;
    onTaskEvent(socket, name, (payload) => {
      if (done) return;
      done = true;
      resolve(payload);
    });
  });
}
