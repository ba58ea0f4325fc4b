/**
 * Is a flota master already running on PORT? It answers GET /healthz with
 * `{ ok: true }`; its Date header gives its clock. Then GET /api/workers
 * tells how many workers it sees online.
 */
import { z } from 'zod';
import { workersResponseSchema } from '../../proto/src/schemas/metrics.ts';
import type { ClockSample } from './clock.ts';
import { type CheckResult, fail, PROBE_TIMEOUT_MS, pass, reasonOf } from './result.ts';

export interface MasterTarget {
  /** `http(s)://host:PORT` */
  url: string;
  /** PEM CA to trust over https (TLS_CA, or the self-signed TLS_CERT). */
  ca?: string;
  /** API token for /api/workers, when the master asks for one. */
  token?: string;
}

export type MasterProbe =
  | { running: true; clock?: ClockSample }
  | { running: false; reason: string };

const healthSchema = z.object({ ok: z.literal(true) });

interface Answer {
  ok: boolean;
  status: number;
  statusText: string;
  date: string | null;
  body: unknown;
}

/** One bounded GET; its connection is closed before it returns, so nothing keeps the CLI alive. */
async function get(target: MasterTarget, path: string, token?: string): Promise<Answer> {
  // Loaded when the doctor asks, not with every flota command.
  const { Agent, fetch } = await import('undici');
  const dispatcher = new Agent({ connect: target.ca ? { ca: target.ca } : {} });
  try {
    const res = await fetch(`${target.url}${path}`, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
      dispatcher,
    });
    const body: unknown = await res.json().catch(() => undefined);
    const { ok, status, statusText } = res;
    return { ok, status, statusText, date: res.headers.get('date'), body };
  } finally {
    await dispatcher.close();
  }
}

export async function probeMaster(target: MasterTarget): Promise<MasterProbe> {
  try {
    const sent = Date.now();
    const res = await get(target, '/healthz');
    const received = Date.now();
    if (!res.ok || !healthSchema.safeParse(res.body).success) {
      return { running: false, reason: `${target.url}/healthz is not a flota master's` };
    }
    const date = Date.parse(res.date ?? '');
    const clock = Number.isNaN(date)
      ? undefined
      : {
          source: 'the master',
          remoteMs: date,
          localMs: (sent + received) / 2,
          resolutionMs: 1_000,
        };
    return { running: true, clock };
  } catch (err) {
    return { running: false, reason: reasonOf(err) };
  }
}

export function masterVerdict(target: MasterTarget, probe: MasterProbe): CheckResult {
  if (probe.running) return pass('master', `flota master running at ${target.url}`);
  return pass(
    'master',
    `no flota master running at ${target.url} (gRPC and workers are checked while one runs)`,
  );
}

export type WorkersProbe =
  | { ok: true; online: number; total: number }
  | { ok: false; status?: number; reason: string };

export async function probeWorkers(target: MasterTarget): Promise<WorkersProbe> {
  try {
    const res = await get(target, '/api/workers', target.token);
    if (!res.ok) {
      const error = (res.body as { error?: unknown } | undefined)?.error;
      return {
        ok: false,
        status: res.status,
        reason: typeof error === 'string' ? error : res.statusText,
      };
    }
    const parsed = workersResponseSchema.safeParse(res.body);
    if (!parsed.success) return { ok: false, reason: 'the answer is not a worker list' };
    const { workers } = parsed.data;
    return {
      ok: true,
      online: workers.filter((w) => w.state === 'online').length,
      total: workers.length,
    };
  } catch (err) {
    return { ok: false, reason: reasonOf(err) };
  }
}

export function workersVerdict(probe: WorkersProbe, hasToken: boolean): CheckResult {
  if (probe.ok && probe.online > 0) {
    return pass('workers', `${probe.online} worker${probe.online === 1 ? '' : 's'} online`);
  }
  if (probe.ok) {
    const known = probe.total > 0 ? ` (${probe.total} known, all offline)` : '';
    return fail(
      'workers',
      'workers online: none',
      `the master has no worker to run tasks${known}`,
      'Start one: npm start, or `flota worker` with WORKER_TOKEN from `flota token worker ID`',
    );
  }
  if (probe.status === 401) {
    return fail(
      'workers',
      'workers: cannot list them',
      'the master asks for an API token',
      hasToken
        ? 'The token given is not accepted: check --token / FLOTA_TOKEN'
        : 'Pass --token or set FLOTA_TOKEN',
    );
  }
  return fail(
    'workers',
    'workers: cannot list them',
    probe.status ? `${probe.status} ${probe.reason}` : probe.reason,
    'Check that the master on PORT is this installation’s (flota workers shows the same list)',
  );
}
