/**
 * The console views' data table and cursor pager. A table scrolls sideways
 * inside its own box, so a narrow screen never scrolls the page; re-rendering
 * keeps the selected row and the focused row button, so a refresh every few
 * seconds does not take the place away from someone reading or tabbing.
 */
import { clear, h } from '../js/dom.js';
import { button } from './controls.js';

/**
 * @template Row
 * @typedef {object} Column
 * @property {string} title the header text
 * @property {(row: Row) => Node | string} cell what the cell holds
 * @property {'num' | 'mono' | 'wide'} [kind] right-aligned figures, monospace, or a long text cell
 */

/**
 * @template Row
 * @param {object} options
 * @param {string} options.label what the table lists (its caption, read by screen readers)
 * @param {Array<Column<Row>>} options.columns
 * @param {(row: Row) => string} options.key a row's stable identity
 * @param {string} options.empty what to say when there is no row
 * @param {(row: Row) => void} [options.onSelect] makes rows selectable: the first cell becomes a button
 * @param {(rows: Row[]) => Array<Node | string> | undefined} [options.footer] a totals row
 * @param {string} [options.testid]
 */
export function createTable({ label, columns, key, empty, onSelect, footer, testid }) {
  const body = h('tbody');
  const foot = h('tfoot');
  const table = h('table', { class: 'cv-table' }, [
    h('caption', { class: 'sr-only', text: label }),
    h('thead', {}, [
      h(
        'tr',
        {},
        columns.map((c) =>
          // Only figures' alignment carries over to the header; monospace is for values.
          h('th', {
            scope: 'col',
            class: c.kind === 'num' ? cellClass(c) : undefined,
            text: c.title,
          }),
        ),
      ),
    ]),
    body,
    foot,
  ]);
  const emptyNote = h('p', { class: 'cv-empty', text: empty, hidden: true });
  const element = h('div', { class: 'cv-table-box', testid }, [table, emptyNote]);
  /** @type {string | undefined} */
  let selected;
  /** @type {Row[]} */
  let current = [];

  /** @param {Row} row */
  function renderRow(row) {
    const id = key(row);
    const cells = columns.map((c, i) => {
      const content = c.cell(row);
      const inner =
        i === 0 && onSelect
          ? h(
              'button',
              {
                type: 'button',
                class: 'cv-row-button',
                'data-key': id,
                'aria-pressed': id === selected ? 'true' : 'false',
                onclick: () => choose(row),
              },
              [content],
            )
          : content;
      return h(i === 0 ? 'th' : 'td', { class: cellClass(c), scope: i === 0 ? 'row' : undefined }, [
        inner,
      ]);
    });
    const tr = h(
      'tr',
      { 'data-key': id, class: id === selected ? 'is-selected' : undefined },
      cells,
    );
    if (onSelect) {
      // The whole row answers a click; the first cell's button is the keyboard's way in.
      tr.addEventListener('click', (event) => {
        if (event.target instanceof Element && event.target.closest('button, a, input')) return;
        choose(row);
      });
    }
    return tr;
  }

  /** @param {Row} row */
  function choose(row) {
    select(key(row));
    onSelect?.(row);
  }

  /** @param {string | undefined} id */
  function select(id) {
    selected = id;
    for (const tr of body.querySelectorAll('tr')) {
      const on = tr.getAttribute('data-key') === id;
      tr.classList.toggle('is-selected', on);
      tr.querySelector('.cv-row-button')?.setAttribute('aria-pressed', on ? 'true' : 'false');
    }
  }

  return {
    element,
    /** @param {Row[]} rows */
    render(rows) {
      current = rows;
      const active = document.activeElement;
      const focusedKey =
        active instanceof HTMLElement && body.contains(active) ? active.dataset.key : undefined;
      clear(body);
      for (const row of rows) body.appendChild(renderRow(row));
      clear(foot);
      const totals = footer?.(rows);
      if (totals && rows.length > 0) {
        foot.appendChild(
          h(
            'tr',
            {},
            totals.map((cell, i) =>
              h(i === 0 ? 'th' : 'td', { class: cellClass(columns[i] ?? {}) }, [cell]),
            ),
          ),
        );
      }
      emptyNote.hidden = rows.length > 0;
      table.hidden = rows.length === 0;
      if (focusedKey) {
        /** @type {HTMLElement | null} */
        const again = body.querySelector(`.cv-row-button[data-key="${CSS.escape(focusedKey)}"]`);
        again?.focus({ preventScroll: true });
      }
    },
    select,
    /** The rows on show. */
    rows: () => current,
  };
}

/** @param {{ kind?: string }} column */
function cellClass(column) {
  return column.kind ? `cv-cell-${column.kind}` : undefined;
}

/**
 * "Older →" pages with a page's `nextCursor`; "Newer" walks back the cursors
 * used on the way; "Newest" starts again from the top.
 * @param {object} options
 * @param {() => void} options.onChange called after the page to show changed (read `cursor()`)
 * @param {string} [options.noun] what the pages hold, for the buttons' labels
 */
export function createPager({ onChange, noun = 'items' }) {
  /** @type {Array<string | undefined>} */
  const trail = [];
  /** @type {string | undefined} */
  let cursor;
  /** @type {string | undefined} */
  let next;
  const newest = button('⇤ Newest', () => go(undefined, true), {
    'aria-label': `Back to the newest ${noun}`,
  });
  const newer = button('← Newer', () => go(trail.pop(), false), { 'aria-label': `Newer ${noun}` });
  const older = button(
    'Older →',
    () => {
      trail.push(cursor);
      go(next, false);
    },
    { 'aria-label': `Older ${noun}` },
  );
  const where = h('span', { class: 'cv-muted' });
  const element = h('nav', { class: 'cv-pager', 'aria-label': `Pages of ${noun}` }, [
    newest,
    newer,
    older,
    where,
  ]);

  /** @param {string | undefined} to @param {boolean} reset */
  function go(to, reset) {
    if (reset) trail.length = 0;
    cursor = to;
    next = undefined;
    sync();
    onChange();
  }

  function sync() {
    newest.disabled = cursor === undefined;
    newer.disabled = trail.length === 0;
    older.disabled = next === undefined;
    where.textContent = cursor === undefined ? 'Newest first' : `Page ${trail.length + 1}`;
  }
  sync();

  return {
    element,
    /** The cursor of the page to show (undefined: the newest). */
    cursor: () => cursor,
    /** @param {string | undefined} nextCursor the shown page's `nextCursor` */
    loaded(nextCursor) {
      next = nextCursor;
      sync();
    },
    /** Back to the newest page without a load (the caller loads). */
    reset() {
      trail.length = 0;
      cursor = undefined;
      next = undefined;
      sync();
    },
  };
}
