import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ASSIGNMENT_REJECT_CODES,
  ATTEMPT_STOP_CODES,
  isRetryableErrorCode,
  PROVIDER_ERROR_CODE,
  RESULT_REJECT_REASONS,
  STREAM_REJECT_REASONS,
} from '../../proto/src/schemas/codes.ts';

const PROTO = readFileSync(join(import.meta.dirname, '../../proto/flota/v1/master.proto'), 'utf8');

/** The quoted examples in the comment lines right above `field` in master.proto. */
function documented(field: string): string[] {
  const lines = PROTO.split('\n');
  const at = lines.findIndex((l) => l.includes(field));
  const comment: string[] = [];
  for (let i = at - 1; i >= 0 && lines[i]?.trim().startsWith('//'); i -= 1) {
    comment.unshift(lines[i] as string);
  }
  return [...comment.join(' ').matchAll(/"([a-z_]+)[":]/g)].map((m) => m[1] as string);
}

describe('wire codes', () => {
  it('master.proto documents only error codes a worker sends', () => {
    const sent = new Set<string>([
      ...ASSIGNMENT_REJECT_CODES,
      ...ATTEMPT_STOP_CODES,
      PROVIDER_ERROR_CODE,
    ]);
    const named = documented('string error_code');
    expect(named.length).toBeGreaterThan(0);
    expect(named.filter((code) => !sent.has(code))).toEqual([]);
  });

  it('master.proto documents only ack reasons the master sends', () => {
    const sent = new Set<string>([...RESULT_REJECT_REASONS, ...STREAM_REJECT_REASONS]);
    const named = documented('string reason');
    expect(named.length).toBeGreaterThan(0);
    expect(named.filter((reason) => !sent.has(reason))).toEqual([]);
  });

  it('retries what says nothing about the task, and fails what does', () => {
    expect(
      ['worker_full', 'draining', 'model_unsupported', 'shutdown'].every(isRetryableErrorCode),
    ).toBe(true);
    expect(
      ['deadline_exceeded', 'cancelled', PROVIDER_ERROR_CODE, 'anything'].some(
        isRetryableErrorCode,
      ),
    ).toBe(false);
  });
});
