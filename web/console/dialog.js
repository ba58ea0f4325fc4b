/**
 * A modal dialog (the native <dialog>) that asks before an action: its
 * fields are a form; it resolves with the form's values when confirmed, or
 * null when cancelled (button, Escape).
 */
import { h } from '../js/dom.js';

/**
 * @param {{
 *   title: string,
 *   body?: Array<Node | string>,
 *   confirm: string,
 *   danger?: boolean,
 *   testid?: string,
 * }} opts
 * @returns {Promise<FormData | null>}
 */
export function askDialog(opts) {
  return new Promise((resolve) => {
    const form = h('form', { method: 'dialog', class: 'dialog-form' }, [
      h('h2', { class: 'dialog-title', text: opts.title }),
      ...(opts.body ?? []),
      h('div', { class: 'dialog-actions' }, [
        h('button', {
          type: 'button',
          class: 'ghost-button',
          testid: 'dialog-cancel',
          text: 'Cancel',
          onclick: () => dialog.close(''),
        }),
        h('button', {
          type: 'submit',
          value: 'ok',
          class: opts.danger ? 'solid-button danger' : 'solid-button',
          testid: 'dialog-confirm',
          text: opts.confirm,
        }),
      ]),
    ]);
    const dialog = /** @type {HTMLDialogElement} */ (
      h('dialog', { class: 'console-dialog', testid: opts.testid ?? 'dialog' }, [form])
    );
    /** @type {FormData | null} */
    let values = null;
    form.addEventListener('submit', () => {
      values = new FormData(/** @type {HTMLFormElement} */ (form));
    });
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(dialog.returnValue === 'ok' ? values : null);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/**
 * A labelled form field.
 * @param {string} label @param {Record<string, unknown>} attrs @param {string} [hint]
 */
export function field(label, attrs, hint) {
  return h('label', { class: 'dialog-field' }, [
    h('span', { class: 'field-label', text: label }),
    h('input', attrs),
    hint ? h('small', { class: 'field-hint', text: hint }) : null,
  ]);
}
