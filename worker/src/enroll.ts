/**
 * Enrollment: a worker started with a join token (WORKER_JOIN_TOKEN) asks
 * the master for its own credential before it connects anywhere, then uses
 * that credential for MQTT and gRPC like any other worker.
 *
 * A master that is not up yet, or that still sees a previous instance of
 * this id online (a replaced replica whose Last Will is on its way), is
 * waited for, with backoff, up to `waitMs`. A refusal that waiting cannot
 * change (a bad join token, an id outside its prefix) ends the start at once
 * with the master's own explanation. A try that timed out is retried on a
 * new channel: a dial to a master that was just replaced can hang on the
 * gone container's address, and the old channel would keep waiting on it.
 */
import * as grpc from '@grpc/grpc-js';
import { FlotaError } from '../../common/errors.ts';
import type { Logger } from '../../common/logger.ts';
import { backoffDelay } from '../../common/retry.ts';
import { formatZodError } from '../../common/zod-error.ts';
import {
  bearer,
  type EnrollReply__Output,
  loadMasterPackage,
  type MasterClient,
  METADATA_AUTHORIZATION,
} from '../../proto/src/grpc.ts';
import { enrollReplyMessageSchema } from '../../proto/src/schemas/grpc.ts';
import { GRPC_CHANNEL_OPTIONS } from './grpc-link.ts';

/** The master refused to enroll this worker, or could not be reached in time. */
export class EnrollmentError extends FlotaError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('enrollment_refused', message, options);
  }
}

export interface EnrollOptions {
  address: string;
  workerId: string;
  joinToken: string;
  channelCredentials: grpc.ChannelCredentials;
  log: Logger;
  /** How long to keep trying while the master is unreachable or the id is still online; default 120 s. */
  waitMs?: number;
  /** How long one try may take; default CALL_TIMEOUT_MS (tests shorten it). */
  callTimeoutMs?: number;
}

export const DEFAULT_ENROLL_WAIT_MS = 120_000;
const CALL_TIMEOUT_MS = 10_000;
/** Backoff between Enroll tries: the cap doubles from 250 ms to 5 s, each wait drawn below it. */
const RETRY_BACKOFF = { baseMs: 250, maxMs: 5_000 };

/** Worth another try: the master is away, or the id's previous holder is still online. */
const TRANSIENT = new Set<grpc.status>([
  grpc.status.UNAVAILABLE,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.ALREADY_EXISTS,
]);

/** Trades the join token for this worker's own credential. */
export async function enrollWorker(options: EnrollOptions): Promise<string> {
  const { workerId } = options;
  const log = options.log.child({ component: 'enroll' });
  const { proto } = loadMasterPackage();
  // A channel of its own, so a new one after a timeout never gets the stuck connection back.
  const newClient = (): MasterClient =>
    new proto.flota.v1.Master(options.address, options.channelCredentials, {
      ...GRPC_CHANNEL_OPTIONS,
      'grpc.use_local_subchannel_pool': 1,
    });
  let client = newClient();
  const stopAt = Date.now() + (options.waitMs ?? DEFAULT_ENROLL_WAIT_MS);
  const callOnce = () =>
    new Promise<{ error?: grpc.ServiceError; reply?: EnrollReply__Output }>((resolve) => {
      const metadata = new grpc.Metadata();
      metadata.set(METADATA_AUTHORIZATION, bearer(options.joinToken));
      client.Enroll(
        { workerId },
        metadata,
        { deadline: new Date(Date.now() + (options.callTimeoutMs ?? CALL_TIMEOUT_MS)) },
        (error, reply) => resolve(error ? { error } : { reply }),
      );
    });
  try {
    for (let attempt = 0; ; attempt += 1) {
      const { error, reply } = await callOnce();
      if (reply) {
        const parsed = enrollReplyMessageSchema.safeParse(reply);
        if (!parsed.success) {
          throw new EnrollmentError(
            `the master's Enroll reply is invalid: ${formatZodError(parsed.error)}`,
          );
        }
        log.info(
          { address: options.address },
          'enrolled: the master issued this worker a credential',
        );
        return parsed.data.credential;
      }
      const failure = error as grpc.ServiceError;
      const why = `${grpc.status[failure.code] ?? failure.code}: ${failure.details || failure.message}`;
      if (!TRANSIENT.has(failure.code)) {
        throw new EnrollmentError(
          `the master at ${options.address} refused to enroll worker ${workerId} (${why})`,
          { cause: failure },
        );
      }
      const delay = backoffDelay(attempt, RETRY_BACKOFF);
      if (Date.now() + delay >= stopAt) {
        throw new EnrollmentError(
          `could not enroll worker ${workerId} with the master at ${options.address} in time (${why})`,
          { cause: failure },
        );
      }
      // The first failure is worth a warning; the same one repeating is not.
      log[attempt === 0 ? 'warn' : 'debug'](
        { reason: why, delay },
        'enrollment not possible yet; retrying',
      );
      if (failure.code === grpc.status.DEADLINE_EXCEEDED) {
        client.close();
        client = newClient();
      }
      await new Promise<void>((resolve) => setTimeout(resolve, delay));
    }
  } finally {
    client.close();
  }
}
