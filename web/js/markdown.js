/**
 * Answers as Markdown: marked turns the text into HTML, DOMPurify keeps only
 * safe markup (no scripts, event handlers, styles, forms, frames or remote
 * images; links open in a new tab without an opener), and highlight.js
 * colours code blocks. The three are served by the master under /vendor
 * from its installed packages (master/src/http/web-assets.ts).
 */

import hljs from '../vendor/highlight.min.js';
import { Marked } from '../vendor/marked.esm.js';
import DOMPurify from '../vendor/purify.es.mjs';

const marked = new Marked({ gfm: true, breaks: true, async: false });
hljs.configure({ ignoreUnescapedHTML: true });

/** Longest code block highlighted with language guessing (it costs time in proportion). */
const MAX_GUESSED_CODE = 20_000;

DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A' && node.getAttribute('href')) {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer nofollow');
  }
});

const PURIFY = {
  FORBID_TAGS: ['img', 'style', 'form', 'input', 'button', 'textarea', 'select', 'iframe'],
  FORBID_ATTR: ['style'],
};

/**
 * Replaces the children of `target` with the rendered answer.
 * @param {HTMLElement} target @param {string} text
 */
export function renderMarkdown(target, text) {
  const html = /** @type {string} */ (marked.parse(text)).trim();
  target.innerHTML = DOMPurify.sanitize(html, PURIFY);
  for (const block of target.querySelectorAll('pre code')) {
    const code = /** @type {HTMLElement} */ (block);
    const named = [...code.classList].some((c) => c.startsWith('language-'));
    if (!named && (code.textContent ?? '').length > MAX_GUESSED_CODE) continue;
    hljs.highlightElement(code);
    const language = [...code.classList]
      .find((c) => c.startsWith('language-'))
      ?.slice('language-'.length);
    const pre = code.parentElement;
    if (pre && language && language !== 'undefined' && language !== 'plaintext') {
      pre.dataset.language = language;
    }
  }
}
