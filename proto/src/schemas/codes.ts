/**
 * The codes and reasons master and worker exchange. The .proto carries them
 * as plain strings (TaskResult.error_code, TaskAck.reason) and the MQTT
 * status as JSON; these lists are what each side sends and the other reads,
 * so neither side spells one on its own.
 */

/** `TaskResult.error_code` of an assignment the worker refused to start. */
export const ASSIGNMENT_REJECT_CODES = [
  'worker_full',
  'model_unsupported',
  'deadline_exceeded',
  'draining',
] as const;
export type AssignmentRejectCode = (typeof ASSIGNMENT_REJECT_CODES)[number];

/** `TaskResult.error_code` of an attempt the worker stopped while it ran. */
export const ATTEMPT_STOP_CODES = ['cancelled', 'deadline_exceeded', 'shutdown'] as const;
export type AttemptStopCode = (typeof ATTEMPT_STOP_CODES)[number];

/** `TaskResult.error_code` of a provider failure that names no code of its own. */
export const PROVIDER_ERROR_CODE = 'provider_error';

/**
 * Error codes that say nothing about the task itself: another worker may run
 * it, so the master requeues the attempt instead of failing the task.
 */
export const RETRYABLE_ERROR_CODES = [
  'worker_full',
  'draining',
  'model_unsupported',
  'shutdown',
] as const satisfies ReadonlyArray<AssignmentRejectCode | AttemptStopCode>;
export type RetryableErrorCode = (typeof RETRYABLE_ERROR_CODES)[number];

export const isRetryableErrorCode = (code: string): code is RetryableErrorCode =>
  (RETRYABLE_ERROR_CODES as readonly string[]).includes(code);

/** `TaskAck.reason` of a result the master's result handler refused. */
export const RESULT_REJECT_REASONS = [
  'unknown_task',
  'stale_lease',
  'not_lease_owner',
  /** The master kept the lease but could not commit: the worker sends the result again. */
  'store_unavailable',
] as const;
export type ResultRejectReason = (typeof RESULT_REJECT_REASONS)[number];

/**
 * `TaskAck.reason` the gRPC server gives on its own: `no_final` (the stream
 * ended without a final result), `internal` (the master failed handling it),
 * and `bad_request: <why>` for a malformed message (the prefix is the code).
 */
export const STREAM_REJECT_REASONS = ['no_final', 'internal', 'bad_request'] as const;
export type StreamRejectReason = (typeof STREAM_REJECT_REASONS)[number];

/** `reason` of the worker's offline status: its Last Will (`lost`) or its clean stop. */
export const WORKER_LEAVE_REASONS = ['lost', 'shutdown'] as const;
export type WorkerLeaveReason = (typeof WORKER_LEAVE_REASONS)[number];

/**
 * Why the master counts a worker offline: what the worker said, or what the
 * master saw itself, a new `startedAt` (`restarted`) or silence
 * (`missed_heartbeats`, which a later heartbeat undoes).
 */
export const WORKER_OFFLINE_REASONS = [
  ...WORKER_LEAVE_REASONS,
  'restarted',
  'missed_heartbeats',
] as const;
export type WorkerOfflineReason = (typeof WORKER_OFFLINE_REASONS)[number];
