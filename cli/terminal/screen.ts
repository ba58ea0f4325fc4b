/**
 * A terminal with one live line at the bottom: lines printed above it scroll
 * as usual, while the status line is redrawn in place. Before each printed
 * line the status line is erased (carriage return, erase line), and drawn
 * again after it, so it never lands in the scrollback.
 */
import type { MasterStatus } from '../../proto/src/ipc.ts';
import { renderStatusLine } from './status-line.ts';

/** Back to column 0, then erase the whole line. */
export const ERASE_LINE = '\r\x1b[2K';

export interface ScreenOptions {
  out: { write(text: string): unknown };
  err: { write(text: string): unknown };
  /** Draw the status line (only on a terminal: elsewhere its redraws would pile up). */
  live: boolean;
  colors: boolean;
  /** The terminal's width now (it can be resized). */
  columns(): number;
}

export class Screen {
  private latest: MasterStatus | undefined;
  /** The status line as last drawn; empty while none is on screen. */
  private drawn = '';
  private ended = false;

  constructor(private readonly options: ScreenOptions) {}

  /** Prints `text` (one or more lines) above the status line, on stdout or stderr. */
  print(text: string, to: 'out' | 'err' = 'out'): void {
    const line = this.drawn;
    this.erase();
    this.options[to].write(`${text}\n`);
    this.draw(line);
  }

  /** Shows `status` on the status line (redrawn only when its text changes). */
  status(status: MasterStatus): void {
    if (this.ended || !this.options.live) return;
    this.latest = status;
    this.redraw();
  }

  /** Fits the status line to a new width. */
  resized(): void {
    if (this.latest && !this.ended) this.redraw();
  }

  /** Erases the status line for good: what follows (the shutdown) prints as plain lines. */
  end(): void {
    this.erase();
    this.ended = true;
  }

  private redraw(): void {
    if (!this.latest) return;
    const line = renderStatusLine(this.latest, {
      width: this.options.columns(),
      colors: this.options.colors,
    });
    if (line === this.drawn) return;
    this.erase();
    this.draw(line);
  }

  private erase(): void {
    if (this.drawn === '') return;
    this.options.out.write(ERASE_LINE);
    this.drawn = '';
  }

  private draw(line: string): void {
    if (line === '' || this.ended) return;
    this.options.out.write(line);
    this.drawn = line;
  }
}
