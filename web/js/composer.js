/**
 * The prompt composer: textarea (Enter sends, Shift+Enter adds a line),
 * model selector, GPU toggle, priority, "skip cache" toggle and the
 * per-session API key.
 */
import { h } from './dom.js';
import { chosenPriority, DEFAULT_PRIORITY, priorityTitle, showPriority } from './priority.js';
import { loadApiKey, saveApiKey } from './storage.js';

/** MAX_PROMPT_CHARS of proto/src/schemas/task.ts (a unit test holds them equal). */
const MAX_PROMPT_CHARS = 100_000;

/**
 * @param {{
 *   form: HTMLFormElement, input: HTMLTextAreaElement, send: HTMLButtonElement,
 *   model: HTMLSelectElement, gpu: HTMLInputElement, apiKey: HTMLInputElement,
 *   priority: HTMLSelectElement, noCache: HTMLInputElement,
 *   onSend: (draft: Draft) => void,
 * }} els
 * @typedef {{
 *   prompt: string, model?: string, gpu: boolean, apiKey?: string,
 *   priority: number, noCache: boolean,
 * }} Draft
 */
export function createComposer(els) {
  const { form, input, send, model, gpu, apiKey, priority, noCache, onSend } = els;
  input.maxLength = MAX_PROMPT_CHARS;
  apiKey.value = loadApiKey();
  apiKey.addEventListener('input', () => saveApiKey(apiKey.value.trim()));
  showPriority(priority, DEFAULT_PRIORITY);
  priority.addEventListener('change', () => {
    priority.title = priorityTitle(chosenPriority(priority));
  });

  const sync = () => {
    send.disabled = input.value.trim().length === 0;
    input.style.height = 'auto';
    input.style.height = `${Math.min(input.scrollHeight, 240)}px`;
  };
  input.addEventListener('input', sync);
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const prompt = input.value.trim();
    if (!prompt) return;
    const key = apiKey.value.trim();
    onSend({
      prompt,
      model: model.value || undefined,
      gpu: gpu.checked,
      apiKey: key || undefined,
      priority: chosenPriority(priority),
      noCache: noCache.checked,
    });
    input.value = '';
    sync();
    input.focus();
  });
  sync();

  /**
   * The models to choose from, each labelled with where it runs now: `llama3 · GPU`,
   * `echo · CPU`, `phi3 · CPU + GPU`, or `(offline)` when no online worker serves it;
   * a model workers run locally adds whether one holds it in memory:
   * `tiny · CPU · loaded` answers at once, `tiny · CPU · not loaded` loads first
   * (from the fleet summary: online workers per model and kind, and loaded).
   * @param {string[]} models @param {Record<string, any>} [fleet]
   */
  function setModels(models, fleet) {
    // The master's order is kept: its first model is the default choice.
    const unique = [...new Set(models)];
    const previous = model.value;
    /** @param {string} m */
    const label = (m) => {
      const served = fleet?.models?.[m] ?? {};
      const kinds = ['cpu', 'gpu'].filter((k) => Number(served[k]) > 0);
      const where = kinds.length ? kinds.map((k) => k.toUpperCase()).join(' + ') : '(offline)';
      if (served.local !== true || !kinds.length) return `${m} · ${where}`;
      return `${m} · ${where} · ${Number(served.loaded) > 0 ? 'loaded' : 'not loaded'}`;
    };
    const options = unique.length
      ? unique.map((m) => h('option', { value: m, text: label(m) }))
      : [h('option', { value: '', text: 'Default model' })];
    model.replaceChildren(...options);
    model.value = unique.includes(previous) ? previous : (unique[0] ?? '');
    model.title = unique.length
      ? `${unique.length} model(s) served by online workers`
      : 'No worker is online yet';
  }

  /** @param {string} text */
  function fill(text) {
    input.value = text;
    sync();
    input.focus();
  }

  return { setModels, fill };
}
