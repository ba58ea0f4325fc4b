/**
 * Enroll: a worker whose id is only known when it starts (a Swarm replica)
 * trades a join token for its own worker credential. The auth interceptor
 * has already checked the join token; this handler decides whether the id
 * may have a credential.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../../common/logger.ts';
import { formatZodError } from '../../../common/zod-error.ts';
import type { MasterHandlers } from '../../../proto/src/grpc.ts';
import { enrollRequestMessageSchema } from '../../../proto/src/schemas/grpc.ts';
import type { WorkerCredentials } from '../security/worker-credentials.ts';
import { bearerOf } from './auth-interceptor.ts';

/** What enrollment needs from the rest of the master. */
export interface Enrollment {
  /** A fresh credential for the id, provisioned on the broker where needed. */
  issue(workerId: string): Promise<string>;
  /** A worker with this id is online now: a second one must not take over its identity. */
  isOnline(workerId: string): boolean;
}

export interface EnrollHandlerOptions {
  credentials: WorkerCredentials;
  enroll: Enrollment;
  log: Logger;
}

const refusal = (code: grpc.status, details: string): Partial<grpc.StatusObject> => ({
  code,
  details,
});

export function createEnrollHandler(options: EnrollHandlerOptions): MasterHandlers['Enroll'] {
  const log = options.log.child({ component: 'grpc-enroll' });
  return (call, callback) => {
    const parsed = enrollRequestMessageSchema.safeParse(call.request);
    if (!parsed.success) {
      return callback(
        refusal(grpc.status.INVALID_ARGUMENT, `worker_id: ${formatZodError(parsed.error)}`),
      );
    }
    const { workerId } = parsed.data;
    // Already checked by the interceptor; read again here only for its prefix.
    const join = options.credentials.checkJoin(bearerOf(call.metadata));
    if (!join.ok) {
      return callback(refusal(grpc.status.UNAUTHENTICATED, 'Enroll needs a valid join token'));
    }
    if (!workerId.startsWith(join.prefix)) {
      log.warn({ workerId, prefix: join.prefix }, 'enrollment refused: id outside the prefix');
      return callback(
        refusal(
          grpc.status.PERMISSION_DENIED,
          `the join token admits worker ids starting with ${JSON.stringify(join.prefix)}, not ${JSON.stringify(workerId)}`,
        ),
      );
    }
    if (options.enroll.isOnline(workerId)) {
      log.warn({ workerId }, 'enrollment refused: a worker with that id is online');
      return callback(
        refusal(
          grpc.status.ALREADY_EXISTS,
          `a worker with id ${JSON.stringify(workerId)} is online: give this one another WORKER_ID, or wait until that one is offline`,
        ),
      );
    }
    options.enroll.issue(workerId).then(
      (credential) => {
        log.info({ workerId, prefix: join.prefix }, 'worker enrolled');
        callback(null, { credential });
      },
      (err: unknown) => {
        log.error({ err, workerId }, 'enrollment failed');
        callback(
          refusal(
            grpc.status.UNAVAILABLE,
            'the master could not issue a credential now: try again',
          ),
        );
      },
    );
  };
}
