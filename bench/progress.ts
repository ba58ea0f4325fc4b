/**
 * Progress on stderr: a redrawn bar on a terminal, a few plain lines
 * otherwise (CI logs, pipes), so stdout keeps only the results.
 */

const WIDTH = 28;
const REDRAW_MS = 80;

export interface Bar {
  update(done: number, detail?: string): void;
  finish(detail?: string): void;
}

export class Progress {
  private readonly tty: boolean;
  private readonly startedAt = performance.now();

  constructor(
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly quiet = false,
  ) {
    this.tty = out.isTTY === true;
  }

  private elapsed(): string {
    return `${((performance.now() - this.startedAt) / 1000).toFixed(1).padStart(6)}s`;
  }

  /** A one-line status message. */
  note(text: string): void {
    if (this.quiet) return;
    this.out.write(`${this.elapsed()}  ${text}\n`);
  }

  /** A bar for `total` steps of `label`. */
  bar(label: string, total: number): Bar {
    const t0 = performance.now();
    let lastDraw = 0;
    let lastDone = 0;
    let nextQuarter = 1;
    let finished = false;
    const line = (done: number, detail?: string) => {
      const share = total > 0 ? Math.min(1, done / total) : 1;
      const filled = Math.round(share * WIDTH);
      const bar = `[${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}]`;
      const secs = ((performance.now() - t0) / 1000).toFixed(1);
      return `${this.elapsed()}  ${label.padEnd(26)} ${bar} ${done}/${total} ${secs}s${detail ? `  ${detail}` : ''}`;
    };
    return {
      update: (done, detail) => {
        if (this.quiet || finished) return;
        if (this.tty) {
          const now = performance.now();
          if (now - lastDraw < REDRAW_MS && !(done >= total && lastDone < total)) return;
          lastDraw = now;
          lastDone = done;
          this.out.write(`\r${line(done, detail)}\x1b[K`);
        } else if (done < total && done >= (nextQuarter * total) / 4 && nextQuarter < 4) {
          while (nextQuarter < 4 && done >= (nextQuarter * total) / 4) nextQuarter++;
          this.out.write(`${line(done, detail)}\n`);
        }
      },
      finish: (detail) => {
        if (this.quiet || finished) return;
        finished = true;
        this.out.write(
          `${this.tty ? '\r' : ''}${line(total, detail)}${this.tty ? '\x1b[K' : ''}\n`,
        );
      },
    };
  }
}
