/** Why a fleet command did not do what it was asked; each maps to its HTTP status (http/errors.ts). */
import { FlotaError } from '../../../common/errors.ts';
import { API_ERROR_CODES } from '../../../proto/src/http-api.ts';

/** The worker is known but offline (409). */
export class WorkerOfflineError extends FlotaError {
  constructor(workerId: string) {
    super(
      API_ERROR_CODES.workerOffline,
      `worker ${workerId} is offline: it cannot take a command (GET /api/workers lists who is online)`,
    );
  }
}

/** The worker answered that it will not do it (422); the message is its reason. */
export class WorkerRefusedError extends FlotaError {
  constructor(workerId: string, reason: string) {
    super(API_ERROR_CODES.workerRefused, `worker ${workerId} refused: ${reason}`);
  }
}

/** No acknowledgement from the worker in time (504). */
export class NotAcknowledgedError extends FlotaError {
  constructor(workerId: string, ms: number, done: string) {
    super(
      API_ERROR_CODES.notAcknowledged,
      `worker ${workerId} did not acknowledge within ${ms} ms; ${done}`,
    );
  }
}
