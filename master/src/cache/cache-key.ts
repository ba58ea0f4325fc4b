/**
 * The result cache's key: a SHA-256 of a canonical JSON of everything an
 * answer depends on. Canonical means object keys sorted at every depth and
 * undefined members left out, so the same request always gives the same key
 * whatever order its fields arrived in.
 */
import { createHash } from 'node:crypto';
import type { ChatMessage, GenerationParams } from '../../../proto/src/schemas/task.ts';

/** Bump when the key's ingredients change, so old entries are never read as new ones. */
export const CACHE_KEY_VERSION = 1;

export interface CacheKeyInput {
  /** The API token's tenant: entries are never shared between tenants. */
  tenant: string;
  model: string;
  prompt: string;
  /** Earlier turns; absent and empty are the same conversation. */
  messages?: readonly ChatMessage[];
  /** Absent and `{}` are the same parameters. */
  params?: GenerationParams;
}

/** JSON with object keys sorted at every depth; undefined members are dropped (as JSON does). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    const member = (value as Record<string, unknown>)[key];
    if (member !== undefined) out[key] = sortKeys(member);
  }
  return out;
}

/** 64 hex digits naming one (tenant, model, prompt, messages, params). */
export function cacheKey(input: CacheKeyInput): string {
  const canonical = canonicalJson({
    v: CACHE_KEY_VERSION,
    tenant: input.tenant,
    model: input.model,
    prompt: input.prompt,
    messages: (input.messages ?? []).map((m) => ({ role: m.role, content: m.content })),
    params: input.params ?? {},
  });
  return createHash('sha256').update(canonical).digest('hex');
}
