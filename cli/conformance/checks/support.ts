/** What several checks do: make prompts and assignments, and watch a worker's heartbeats. */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Heartbeat } from '../../../proto/src/schemas/worker.ts';
import type { ConformanceContext } from '../context.ts';
import { ECHO_CHUNK_SIZE, ECHO_DELAY_MS, KIT_MODEL } from '../worker-env.ts';

/** A prompt the echo provider takes about `ms` to stream back. */
export function promptLasting(ms: number): string {
  const chars = Math.ceil(ms / ECHO_DELAY_MS) * ECHO_CHUNK_SIZE;
  return 'conformance-'.repeat(Math.ceil(chars / 12)).slice(0, chars);
}

/** What the echo provider answers to `prompt`. */
export const echoAnswer = (prompt: string) => `echo: ${prompt}`;

/**
 * An assignment the master never made (a task id and lease it does not
 * hold), published by the kit as the master would publish one.
 */
export function strayAssignment(promptMs: number) {
  const now = Date.now();
  return {
    taskId: `any.${KIT_MODEL}.${randomBytes(16).toString('hex')}`,
    attempt: 1,
    lease: `conformance.${randomUUID()}`,
    model: KIT_MODEL,
    prompt: promptLasting(promptMs),
    params: {},
    deadline: now + 60_000,
    queuedAt: now,
  };
}

/** Heartbeats of the worker under test that arrived at or after `since`. */
export function heartbeatsSince(ctx: ConformanceContext, since: number): Heartbeat[] {
  return ctx.probe
    .heartbeatsOf(ctx.workerId)
    .filter((h) => h.at >= since && h.value !== undefined)
    .map((h) => h.value as Heartbeat);
}

/** Whether the heartbeat lists an attempt of `taskId` in `active`. */
export const lists = (h: Heartbeat, taskId: string) => h.active.some((a) => a.taskId === taskId);

/** Resolves with when a heartbeat after `since` first listed `taskId` in `active`, or undefined after `ms`. */
export function waitListed(
  ctx: ConformanceContext,
  taskId: string,
  since: number,
  ms: number,
): Promise<number | undefined> {
  return ctx.probe.until(
    () =>
      ctx.probe
        .heartbeatsOf(ctx.workerId)
        .find((h) => h.at >= since && h.value && lists(h.value, taskId))?.at,
    ms,
  );
}

/** Resolves true once a heartbeat after `since` no longer lists `taskId`; false after `ms`. */
export async function waitUnlisted(
  ctx: ConformanceContext,
  taskId: string,
  since: number,
  ms: number,
): Promise<boolean> {
  const gone = await ctx.probe.until(
    () =>
      ctx.probe
        .heartbeatsOf(ctx.workerId)
        .some((h) => h.at >= since && h.value && !lists(h.value, taskId)),
    ms,
  );
  return gone === true;
}

/** Resolves once `count` heartbeats arrived after `since`; false if `ms` pass first. */
export async function waitHeartbeats(
  ctx: ConformanceContext,
  since: number,
  count: number,
  ms: number,
): Promise<boolean> {
  const enough = await ctx.probe.until(() => heartbeatsSince(ctx, since).length >= count, ms);
  return enough === true;
}
