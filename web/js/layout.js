/**
 * Page chrome: theme toggle, the collapsible worker panel on narrow screens,
 * "clear chat" and the welcome suggestions.
 */
import { $ } from './dom.js';
import { loadTheme, saveTheme } from './storage.js';

/** The saved theme, and `#theme-toggle` switching it (the chat and the console). */
export function setupThemeToggle() {
  const root = document.documentElement;
  const saved = loadTheme();
  if (saved) root.dataset.theme = saved;
  $('#theme-toggle').addEventListener('click', () => {
    const dark =
      root.dataset.theme === 'dark' ||
      (!root.dataset.theme && matchMedia('(prefers-color-scheme: dark)').matches);
    const next = dark ? 'light' : 'dark';
    root.dataset.theme = next;
    saveTheme(next);
  });
}

/** @param {{ onClear: () => void, onSuggestion: (text: string) => void }} deps */
export function setupChrome({ onClear, onSuggestion }) {
  setupThemeToggle();

  const panel = $('#workers-panel');
  const toggle = $('#panel-toggle');
  const setOpen = (/** @type {boolean} */ open) => {
    panel.classList.toggle('is-open', open);
    toggle.setAttribute('aria-expanded', String(open));
  };
  toggle.addEventListener('click', () => setOpen(!panel.classList.contains('is-open')));
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && panel.classList.contains('is-open')) {
      setOpen(false);
      toggle.focus();
    }
  });

  $('#clear-chat').addEventListener('click', () => {
    if (confirm('Clear this conversation from this browser?')) onClear();
  });
  for (const button of document.querySelectorAll('.suggestion')) {
    button.addEventListener('click', () => onSuggestion(button.textContent?.trim() ?? ''));
  }
}
