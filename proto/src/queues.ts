/**
 * Queue names. Jobs go to one BullMQ queue per capability class, model and
 * label requirement, so a free CPU worker never waits behind a GPU-only job,
 * a job for a model nobody serves never blocks the others, and a job that
 * needs `zone=eu` never sits in front of one any worker may run.
 */
import { createHash } from 'node:crypto';

export type CapabilityClass = 'any' | 'gpu';

export interface QueueKey {
  readonly capability: CapabilityClass;
  readonly model: string;
  /** Labels a worker must carry with exactly these values. Absent or empty: no label requirement. */
  readonly labels?: Readonly<Record<string, string>>;
  /**
   * Set instead of `labels` on a key read back from a queue name or task id
   * whose label set was too long to spell out (see MAX_INLINE_LABELS): the
   * digest still names the queue, and the labels themselves are in its jobs.
   */
  readonly labelsDigest?: string;
}

/** Every task queue's name starts with this. */
export const QUEUE_PREFIX = 'tasks';
/**
 * Spelled-out label sections longer than this are replaced by a digest, so
 * task ids stay short enough for a URL (the task id schema allows 128 chars).
 */
export const MAX_INLINE_LABELS = 40;
const DIGEST_CHARS = 16;

// BullMQ forbids ':' in queue names; models such as "llama3:8b" need it. '~' stands for ':',
// so a literal '~' is escaped first.
const encodeModel = (model: string) =>
  encodeURIComponent(model).replace(/~/g, '%7E').replace(/%3A/gi, '~');
const decodeModel = (text: string) => decodeURIComponent(text.replace(/~/g, '%3A'));

/** Labels in canonical order (by key, code-unit order), or undefined for none. */
export function canonicalLabels(
  labels: Readonly<Record<string, string>> | undefined,
): Array<[string, string]> | undefined {
  const entries = Object.entries(labels ?? {});
  if (entries.length === 0) return undefined;
  return entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** `zone=eu,tier=gold` (keys sorted), for messages and logs. */
export function describeLabels(labels: Readonly<Record<string, string>> | undefined): string {
  return (canonicalLabels(labels) ?? []).map(([k, v]) => `${k}=${v}`).join(',');
}

/**
 * The label section of a queue name: `@k=v,k2=v2` (URI-encoded, so `=`, `,`
 * and `@` inside keys and values never clash), `@=<digest>` when that would be
 * longer than MAX_INLINE_LABELS, or '' without labels. An encoded model never
 * contains '@', so the section is found by the first '@'.
 */
function labelSection(key: QueueKey): string {
  const entries = canonicalLabels(key.labels);
  if (!entries) return key.labelsDigest ? `@=${key.labelsDigest}` : '';
  const text = entries
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join(',');
  if (text.length <= MAX_INLINE_LABELS) return `@${text}`;
  return `@=${createHash('sha256').update(text).digest('hex').slice(0, DIGEST_CHARS)}`;
}

/** The model and label section (`echo`, `echo@zone=eu`) back as a key, or undefined if malformed. */
function parseBody(capability: CapabilityClass, body: string): QueueKey | undefined {
  const at = body.indexOf('@');
  const modelText = at < 0 ? body : body.slice(0, at);
  if (!modelText) return undefined;
  try {
    const model = decodeModel(modelText);
    if (at < 0) return { capability, model };
    const section = body.slice(at + 1);
    if (section.startsWith('=')) {
      const digest = section.slice(1);
      return /^[0-9a-f]+$/.test(digest) ? { capability, model, labelsDigest: digest } : undefined;
    }
    const labels: Record<string, string> = {};
    for (const pair of section.split(',')) {
      const eq = pair.indexOf('=');
      if (eq <= 0) return undefined;
      labels[decodeURIComponent(pair.slice(0, eq))] = decodeURIComponent(pair.slice(eq + 1));
    }
    return { capability, model, labels };
  } catch {
    return undefined;
  }
}

export function queueName(key: QueueKey): string {
  return `${QUEUE_PREFIX}.${key.capability}.${encodeModel(key.model)}${labelSection(key)}`;
}

export function parseQueueName(name: string): QueueKey | undefined {
  const match = /^tasks\.(any|gpu)\.(.+)$/.exec(name);
  if (!match) return undefined;
  return parseBody(match[1] as CapabilityClass, match[2] as string);
}

/** Job name used for every task job (BullMQ requires one). */
export const TASK_JOB_NAME = 'task';

/**
 * Task ids name their queue (`any.echo.3f…`, `any.echo@zone=eu.3f…`), so any
 * master can find a task from its id alone, with no extra index, even after a
 * restart. The unique part never contains '.', so it is the last segment.
 */
export function taskIdFor(key: QueueKey, unique: string): string {
  return `${key.capability}.${encodeModel(key.model)}${labelSection(key)}.${unique}`;
}

export function queueKeyOfTaskId(taskId: string): QueueKey | undefined {
  const match = /^(any|gpu)\.(.+)\.([A-Za-z0-9_-]+)$/.exec(taskId);
  if (!match) return undefined;
  return parseBody(match[1] as CapabilityClass, match[2] as string);
}
