/**
 * Joins the pieces of text one attempt streams within a short window into one
 * chunk, so a fast stream costs one report (and one master and browser event)
 * per window instead of one per token. A piece goes at once when nothing of
 * its attempt went out within the window (a slow stream waits for nothing);
 * otherwise it is held. One timer serves every attempt of the worker: the
 * first piece held arms it, and when it fires every attempt's held text goes
 * out. A piece therefore waits at most `windowMs` after it was written (later
 * only when the event loop is busy at that moment).
 */

/** One attempt's held text. */
export interface HeldText {
  /** Adds a piece: passed on at once after a quiet window (or with a window of 0), otherwise when the window ends. */
  write(piece: string): void;
  /** Passes on what is held now (before the attempt's result, so no text comes after it). */
  flush(): void;
}

export interface ChunkCoalescer {
  /** Holds text for one attempt; `emit` gets each joined chunk, in order. */
  open(emit: (text: string) => void): HeldText;
  /** Stops the timer; whatever is still held is dropped (the worker is closing). */
  close(): void;
}

/**
 * `windowMs`: the longest a piece is held (0: never); `maxChars`: no joined
 * chunk grows past it (a longer piece still goes alone, as written).
 */
export function createChunkCoalescer(windowMs: number, maxChars: number): ChunkCoalescer {
  const holding = new Set<() => void>();
  let timer: NodeJS.Timeout | undefined;
  const fire = () => {
    timer = undefined;
    const due = [...holding];
    holding.clear();
    for (const flush of due) flush();
  };
  return {
    open(emit) {
      let held = '';
      let sentAt = Number.NEGATIVE_INFINITY;
      const flush = () => {
        holding.delete(flush);
        if (held === '') return;
        const text = held;
        held = '';
        sentAt = Date.now();
        emit(text);
      };
      return {
        write(piece) {
          if (held.length > 0 && held.length + piece.length > maxChars) flush();
          held += piece;
          const quiet = !holding.has(flush) && Date.now() - sentAt >= windowMs;
          if (quiet || windowMs <= 0 || held.length >= maxChars) {
            flush();
            return;
          }
          holding.add(flush);
          timer ??= setTimeout(fire, windowMs);
        },
        flush,
      };
    },
    close() {
      clearTimeout(timer);
      timer = undefined;
      holding.clear();
    },
  };
}
