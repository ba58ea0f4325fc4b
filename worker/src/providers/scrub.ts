/**
 * Keys must never reach a log line, a result or an error text. Provider SDKs
 * and servers sometimes echo request details back; scrub them here.
 */
import { ProviderError } from '../../../common/errors.ts';
import { ABORTED_CODE } from './types.ts';

const REDACTED = '[redacted]';
const MAX_ERROR_CHARS = 500;

const PATTERNS: RegExp[] = [
  /(Bearer\s+)[^\s"',]+/gi,
  /([?&](?:key|api_key|apiKey|access_token)=)[^&\s"']+/g,
  /("?(?:x-goog-api-key|api[_-]?key|authorization)"?\s*[:=]\s*"?)[^\s"',}]+/gi,
  /\bAIza[0-9A-Za-z_-]{20,}\b/g,
  /\bsk-[0-9A-Za-z_-]{16,}\b/g,
];

export function scrubSecrets(text: string, secrets: ReadonlyArray<string | undefined>): string {
  let out = text;
  for (const secret of secrets) {
    if (secret && secret.length >= 4) out = out.split(secret).join(REDACTED);
  }
  for (const pattern of PATTERNS) {
    // Patterns with a group keep their prefix (`Bearer `, `?key=`); the others vanish whole.
    out = out.replace(pattern, (_match, head: unknown) =>
      typeof head === 'string' ? `${head}${REDACTED}` : REDACTED,
    );
  }
  return out.length > MAX_ERROR_CHARS ? `${out.slice(0, MAX_ERROR_CHARS)}…` : out;
}

export function abortedError(): ProviderError {
  return new ProviderError('generation aborted', { code: ABORTED_CODE });
}

export function isAbortError(error: unknown, signal: AbortSignal): boolean {
  if (signal.aborted) return true;
  return error instanceof Error && (error.name === 'AbortError' || error.name === 'TimeoutError');
}
