/** Why the task service refuses a submission that is well formed. */
import { FlotaError, UnavailableError } from '../../../common/errors.ts';
import { API_ERROR_CODES } from '../../../proto/src/http-api.ts';

/** The tenant already has its MAX_QUEUED_PER_TENANT tasks queued or running (429). */
export class QueueFullError extends FlotaError {
  constructor(
    readonly tenant: string,
    readonly cap: number,
  ) {
    super(
      API_ERROR_CODES.queueFull,
      `too many unfinished tasks: ${cap} are queued or running for this tenant (MAX_QUEUED_PER_TENANT); submit again once some have finished`,
    );
  }
}

/** No worker serves the model, nor has any since this master started (400); `models` are the known ones. */
export class UnknownModelError extends FlotaError {
  constructor(
    readonly model: string,
    readonly models: readonly string[],
  ) {
    const known = models.length > 0 ? models.join(', ') : 'none yet (no worker has connected)';
    super(
      API_ERROR_CODES.unknownModel,
      `no worker serves model ${JSON.stringify(model)}; known models: ${known}`,
    );
  }
}

/** The queue store did not answer (503): nothing changed, or the caller cannot know; asking again is safe. */
export class StoreUnavailableError extends UnavailableError {
  /** `detail` adds what makes a retry safe for this request, after the shared sentence. */
  constructor(options: { cause: unknown; detail?: string }) {
    const detail = options.detail ? ` (${options.detail})` : '';
    super(`the queue store is not reachable; retry shortly${detail}`, { cause: options.cause });
  }
}
