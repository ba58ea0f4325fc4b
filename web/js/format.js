/** Formatting helpers for times, shares and durations (answers' Markdown: markdown.js). */

/** @param {unknown} ms */
export function formatMs(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} m ${Math.round((ms % 60_000) / 1000)} s`;
}

/** @param {unknown} pct */
export function formatPct(pct) {
  return typeof pct === 'number' && Number.isFinite(pct) ? `${Math.round(pct)}%` : '—';
}

/** @param {number} ts */
export function formatClock(ts) {
  return new Date(ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/** @param {Record<string, any>} timings */
export function totalMs(timings) {
  if (typeof timings.totalMs === 'number') return timings.totalMs;
  if (typeof timings.finishedAt === 'number' && typeof timings.submittedAt === 'number') {
    return timings.finishedAt - timings.submittedAt;
  }
  return undefined;
}
