/**
 * Formatting helpers and a deliberately small Markdown subset (code fences,
 * inline code, bold, lists, headings). It builds DOM nodes from text; no
 * string is ever handed to innerHTML.
 */
import { h } from './dom.js';

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

/**
 * Replaces the children of `target` with the rendered text.
 * @param {HTMLElement} target @param {string} text
 */
export function renderMarkdown(target, text) {
  const parts = text.split(/^```[^\n]*\n?/m);
  const nodes = [];
  parts.forEach((part, i) => {
    if (i % 2 === 1) nodes.push(h('pre', {}, [h('code', { text: part.replace(/\n$/, '') })]));
    else nodes.push(...blocks(part));
  });
  target.replaceChildren(...nodes);
}

/** @param {string} text */
function blocks(text) {
  const out = [];
  for (const para of text.split(/\n{2,}/)) {
    if (!para.trim()) continue;
    const lines = para.split('\n');
    if (lines.every((l) => /^\s*[-*] /.test(l))) {
      out.push(
        h(
          'ul',
          {},
          lines.map((l) => h('li', {}, inline(l.replace(/^\s*[-*] /, '')))),
        ),
      );
    } else if (lines.every((l) => /^\s*\d+[.)] /.test(l))) {
      out.push(
        h(
          'ol',
          {},
          lines.map((l) => h('li', {}, inline(l.replace(/^\s*\d+[.)] /, '')))),
        ),
      );
    } else if (lines.length === 1 && /^#{1,6} /.test(para)) {
      out.push(h('p', { class: 'md-heading' }, inline(para.replace(/^#+ /, ''))));
    } else {
      const children = [];
      lines.forEach((line, i) => {
        if (i > 0) children.push(h('br'));
        children.push(...inline(line));
      });
      out.push(h('p', {}, children));
    }
  }
  return out;
}

/** @param {string} line @returns {Array<Node | string>} */
function inline(line) {
  const out = [];
  const pattern = /`([^`]+)`|\*\*([^*]+)\*\*/g;
  let last = 0;
  for (const match of line.matchAll(pattern)) {
    const index = match.index ?? 0;
    if (index > last) out.push(line.slice(last, index));
    if (match[1] !== undefined) out.push(h('code', { text: match[1] }));
    else out.push(h('strong', { text: match[2] }));
    last = index + match[0].length;
  }
  if (last < line.length) out.push(line.slice(last));
  return out;
}
