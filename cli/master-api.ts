/**
 * The CLI's client of the master's REST API: the --url / --token options
 * every client command shares (FLOTA_URL, FLOTA_TOKEN), option checks that
 * name the flag at fault, and one request function whose errors say what to
 * do (401: pass a token; 403: an admin token; refused: is the master up?).
 */
import { Option } from 'commander';
import type { Agent } from 'undici';
import { z } from 'zod';
import { FlotaError, ValidationError } from '../common/errors.ts';

/** Where the master answers and who is asking. */
export interface MasterAddress {
  url: string;
  /** API token for `Authorization: Bearer`; needed when the master sets API_TOKENS. */
  token?: string;
  /** PEM CA to trust for an https master whose certificate no public CA signed. */
  ca?: string;
}

/** What every client command takes: where the master is, and `--json` for machine-readable output. */
export interface ClientOptions extends MasterAddress {
  json: boolean;
}

/**
 * One connection pool per CA, kept for the process's life (a supervisor asks
 * again and again). undici loads only when a CA is given: every other call
 * uses the global fetch.
 */
const agents = new Map<string, Agent>();
async function fetchTrusting(ca: string, url: string, init: Parameters<typeof fetch>[1]) {
  const undici = await import('undici');
  let agent = agents.get(ca);
  if (!agent) {
    agent = new undici.Agent({ connect: { ca } });
    agents.set(ca, agent);
  }
  return undici.fetch(url, {
    method: init?.method,
    body: init?.body as string | undefined,
    headers: init?.headers as Record<string, string>,
    dispatcher: agent,
  }) as unknown as Promise<Response>;
}

export const clientSchema = z.object({
  url: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// address' }),
  token: z
    .string()
    .min(1, 'must not be empty')
    .max(4096)
    .regex(/^\S+$/, 'must not contain spaces')
    .optional(),
});

/** Each option as typed on the command line, for error messages. */
const FLAGS: Record<string, string> = {
  url: '--url',
  token: '--token',
  model: '--model',
  priority: '--priority',
  timeoutMs: '--timeout-ms',
  label: '--label',
  idempotencyKey: '--idempotency-key',
};

/** Parses options (or arguments) with zod; a problem names its flag. */
export function check<T>(schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const [first, ...rest] = issue.path.map(String);
    const where = first === undefined ? '' : (FLAGS[first] ?? first);
    const path = [where, ...rest].filter(Boolean).join(' ');
    return path ? `${path}: ${issue.message}` : issue.message;
  });
  throw new ValidationError(problems.join('; '));
}

export const baseOf = (url: string) => url.replace(/\/+$/, '');

/**
 * One request to the master; resolves with the JSON body of a 2xx answer.
 * `schema` checks that body (a master of another version answers in a shape
 * this CLI would misread).
 */
export async function api<T>(
  url: string,
  token: string | undefined,
  init?: RequestInit,
  schema?: z.ZodType<T>,
  ca?: string,
): Promise<T> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    ...(init?.headers as Record<string, string> | undefined),
  };
  if (token) headers.authorization = `Bearer ${token}`;
  let res: Response;
  try {
    res = ca
      ? await fetchTrusting(ca, url, { ...init, headers })
      : await fetch(url, { ...init, headers });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (err as Error).message;
    const hint = cause?.code === 'ECONNREFUSED' ? ' (is it running? set --url or FLOTA_URL)' : '';
    throw new FlotaError(
      'unreachable',
      `cannot reach the master at ${new URL(url).origin}: ${why}${hint}`,
    );
  }
  const body = (await res.json().catch(() => ({}))) as { error?: string };
  if (res.status === 401) {
    const hint = token ? 'check --token / FLOTA_TOKEN' : 'pass --token or set FLOTA_TOKEN';
    throw new FlotaError('unauthorized', `401 ${body.error ?? 'unauthorized'} (${hint})`);
  }
  if (res.status === 403) {
    throw new FlotaError(
      'forbidden',
      `403 ${body.error ?? 'forbidden'} (use an admin token: --token or FLOTA_TOKEN)`,
    );
  }
  if (!res.ok)
    throw new FlotaError('request_failed', `${res.status} ${body.error ?? res.statusText}`);
  if (!schema) return body as T;
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    throw new FlotaError('bad_answer', `the master answered ${url} in an unexpected shape`);
  }
  return parsed.data;
}

export const urlOption = () =>
  new Option('--url <url>', 'master HTTP address')
    .env('FLOTA_URL')
    .default('http://127.0.0.1:8080');
export const tokenOption = () =>
  new Option('--token <token>', 'API token, when the master sets API_TOKENS').env('FLOTA_TOKEN');

/**
 * A parsed query as a query string: lists comma-joined, absent values and
 * `format` left out (the CLI always asks for JSON).
 */
export function queryOf(query: Record<string, unknown>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || key === 'format') continue;
    params.set(key, Array.isArray(value) ? value.join(',') : String(value));
  }
  return params.toString();
}
