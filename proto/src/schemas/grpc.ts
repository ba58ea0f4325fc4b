import { z } from 'zod';
import { MAX_PROMPT_CHARS } from './task.ts';
import { workerIdSchema } from './worker.ts';

/** Largest text one chunk may carry. */
export const MAX_CHUNK_CHARS = 64 * 1024;
/** Largest final answer the master stores. */
export const MAX_RESULT_CHARS = 4 * MAX_PROMPT_CHARS;

/** Longest task id a report or an answer carries. */
export const MAX_TASK_ID_CHARS = 128;
/** Longest reason an answer carries. */
export const MAX_ACK_REASON_CHARS = 1_024;

const fencing = {
  taskId: z.string().min(1).max(MAX_TASK_ID_CHARS),
  attempt: z.number().int().min(1),
  lease: z.string().min(1).max(128),
};

/** Checks a decoded `TaskResult` (proto3 fills absent fields with defaults, so emptiness is checked here). */
export const taskResultMessageSchema = z
  .object({
    ...fencing,
    workerId: z.string().max(128),
    text: z.string().max(MAX_RESULT_CHARS),
    error: z.string().max(8_192),
    errorCode: z.string().max(64),
    startedAt: z.number().nonnegative(),
    finishedAt: z.number().nonnegative(),
    processingMs: z.number().nonnegative(),
    model: z.string().max(200),
  })
  .passthrough();

/**
 * Most reports one `WorkerReports` message may carry (a worker sends what a
 * moment gathered: a few chunks per running attempt). A message with more is
 * refused whole.
 */
export const MAX_REPORTS_PER_MESSAGE = 1_024;

/** Checks a decoded `TaskChunk`. */
export const taskChunkMessageSchema = z
  .object({
    ...fencing,
    seq: z.number().int().nonnegative(),
    text: z.string().max(MAX_CHUNK_CHARS),
  })
  .passthrough();

/** Checks a decoded `TaskAck` on the worker: the answer to one of its reports. */
export const taskAckMessageSchema = z
  .object({
    accepted: z.boolean(),
    reason: z.string().max(MAX_ACK_REASON_CHARS),
    taskId: z.string().max(MAX_TASK_ID_CHARS),
    attempt: z.number().int().nonnegative(),
    final: z.boolean(),
  })
  .passthrough();

/** Checks a decoded `EnrollRequest`: the id the worker asks a credential for. */
export const enrollRequestMessageSchema = z
  .object({
    workerId: workerIdSchema,
  })
  .passthrough();

/** Checks a decoded `EnrollReply` on the worker (the credential becomes its MQTT password). */
export const enrollReplyMessageSchema = z
  .object({
    credential: z.string().min(1).max(512),
  })
  .passthrough();
