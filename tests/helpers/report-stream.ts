/**
 * A worker's Connect stream, as tests drive it by hand: write reports (chunks
 * and results), read the master's answers, see how the call ended.
 */
import type * as grpc from '@grpc/grpc-js';
import type {
  MasterAcks__Output,
  MasterClient,
  TaskAck__Output,
  TaskResult,
  WorkerReport,
  WorkerReports,
} from '../../proto/src/grpc.ts';

export interface Outcome<T> {
  error?: grpc.ServiceError;
  reply?: T;
}

export interface ConnectStream {
  readonly call: grpc.ClientDuplexStream<WorkerReports, MasterAcks__Output>;
  /** Every answer so far, in order. */
  readonly acks: TaskAck__Output[];
  /** Writes one message carrying `reports`. */
  write(reports: WorkerReport[]): void;
  /**
   * The first answer (already here or still to come) that `match` accepts;
   * an error outcome when the call ends first.
   */
  answer(match?: (ack: TaskAck__Output) => boolean): Promise<Outcome<TaskAck__Output>>;
  /** Settles when the call is over: with its error, or none when it ended cleanly. */
  readonly ended: Promise<{ error?: grpc.ServiceError }>;
  /** Half-closes our side. */
  end(): void;
}

/** Opens a Connect stream with `metadata`. */
export function openConnect(client: MasterClient, metadata: grpc.Metadata): ConnectStream {
  const call = client.Connect(metadata);
  const acks: TaskAck__Output[] = [];
  const waiters: Array<{
    match: (ack: TaskAck__Output) => boolean;
    resolve(outcome: Outcome<TaskAck__Output>): void;
  }> = [];
  let over: { error?: grpc.ServiceError } | undefined;
  const ended = new Promise<{ error?: grpc.ServiceError }>((resolve) => {
    const finish = (error?: grpc.ServiceError) => {
      if (over) return;
      over = error ? { error } : {};
      for (const waiter of waiters.splice(0)) {
        waiter.resolve(error ? { error } : { error: endedWithout() });
      }
      resolve(over);
    };
    call.on('error', (error: grpc.ServiceError) => finish(error));
    call.on('end', () => finish());
  });
  call.on('data', (message: MasterAcks__Output) => {
    for (const ack of message.acks) {
      acks.push(ack);
      for (const waiter of [...waiters]) {
        if (!waiter.match(ack)) continue;
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve({ reply: ack });
      }
    }
  });
  return {
    call,
    acks,
    ended,
    write: (reports) => call.write({ reports }),
    end: () => call.end(),
    answer(match = () => true) {
      const found = acks.find(match);
      if (found) return Promise.resolve({ reply: found });
      if (over) return Promise.resolve(over.error ? { error: over.error } : {});
      return new Promise((resolve) => waiters.push({ match, resolve }));
    },
  };
}

/** A stand-in error for a call that ended cleanly before the awaited answer came. */
function endedWithout(): grpc.ServiceError {
  return Object.assign(new Error('the stream ended before this answer'), {
    code: 0,
    details: 'ended',
    metadata: undefined as unknown as grpc.Metadata,
  });
}

/** The answer to `result` (its task and attempt, final), on `stream`. */
export const answerTo = (stream: ConnectStream, result: TaskResult) =>
  stream.answer(
    (ack) => ack.final && ack.taskId === result.taskId && ack.attempt === result.attempt,
  );

/**
 * Sends `reports` on a fresh Connect stream, waits for the answer to the last
 * result among them (or for the first answer at all when there is none), or
 * for the call to fail, then closes the stream.
 */
export async function reportOnce(
  client: MasterClient,
  metadata: grpc.Metadata,
  reports: WorkerReport[],
): Promise<Outcome<TaskAck__Output>> {
  const stream = openConnect(client, metadata);
  stream.call.on('error', () => undefined);
  stream.write(reports);
  const result = [...reports].reverse().find((r) => r.result)?.result ?? undefined;
  const outcome = await (result ? answerTo(stream, result) : stream.answer());
  stream.end();
  return outcome;
}

/** One result on a fresh Connect stream: the master's answer, or the call's error. */
export const reportResult = (client: MasterClient, result: TaskResult, metadata: grpc.Metadata) =>
  reportOnce(client, metadata, [{ result }]);
