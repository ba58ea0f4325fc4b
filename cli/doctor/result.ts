/**
 * One verdict of `flota doctor`: what was checked, whether it passed, and
 * for a failure why and what to do. The same record is printed for people
 * (`✓ …` / `✗ … — why. fix`) and, with --json, for scripts.
 */

export interface CheckResult {
  /** Stable name for scripts: `node`, `config`, `port:MQTT_PORT`, `store`, … */
  check: string;
  ok: boolean;
  /** What was found; for a failure `<what> — <why>`. */
  detail: string;
  /** What to do about a failure; null when it passed. */
  fix: string | null;
}

export const pass = (check: string, detail: string): CheckResult => ({
  check,
  ok: true,
  detail,
  fix: null,
});

export const fail = (check: string, what: string, why: string, fix: string): CheckResult => ({
  check,
  ok: false,
  detail: `${what} — ${why}`,
  fix,
});

/** Why a probe failed, in a few words (`ECONNREFUSED`, `timed out`, …). */
export function reasonOf(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown; cause?: unknown; errors?: unknown };
  if (Array.isArray(e?.errors) && e.errors.length > 0) return reasonOf(e.errors[0]);
  if (typeof e?.code === 'string' && /^E[A-Z]+$/.test(e.code)) return e.code;
  if (e?.cause) return reasonOf(e.cause);
  const text = typeof e?.message === 'string' && e.message !== '' ? e.message : String(err);
  // The verdict adds its own full stop.
  return (text.split('\n')[0] ?? '').replace(/\.+$/, '');
}

/** Every network probe gives up after this long. */
export const PROBE_TIMEOUT_MS = 2_000;

/** The line a person reads: `✓ detail` or `✗ detail. fix` (the first line of the detail). */
export function formatResult(result: CheckResult, colour = false): string {
  const paint = (code: number, text: string) => (colour ? `\u001b[${code}m${text}\u001b[0m` : text);
  const [first = '', ...rest] = result.detail.split('\n');
  const head = result.ok
    ? `${paint(32, '✓')} ${first}`
    : `${paint(31, '✗')} ${first}${result.fix ? `. ${result.fix}` : ''}`;
  return [head, ...rest.map((line) => `    ${line.trim()}`)].join('\n');
}
