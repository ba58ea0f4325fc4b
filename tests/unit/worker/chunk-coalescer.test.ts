import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createChunkCoalescer } from '../../../worker/src/chunk-coalescer.ts';

describe('chunk coalescer', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sends a piece at once after a quiet window, and joins the pieces that follow it within one', async () => {
    const coalescer = createChunkCoalescer(5, 1_000);
    const sent: string[] = [];
    const held = coalescer.open((text) => sent.push(text));
    held.write('ab');
    expect(sent).toEqual(['ab']);
    await vi.advanceTimersByTimeAsync(1);
    held.write('cd');
    await vi.advanceTimersByTimeAsync(3);
    held.write('ef');
    await vi.advanceTimersByTimeAsync(1);
    expect(sent).toEqual(['ab']);
    await vi.advanceTimersByTimeAsync(1);
    expect(sent).toEqual(['ab', 'cdef']);
    expect(vi.getTimerCount()).toBe(0);
    // Quiet for a window again: the next piece waits for nothing.
    await vi.advanceTimersByTimeAsync(5);
    held.write('gh');
    expect(sent).toEqual(['ab', 'cdef', 'gh']);
  });

  it('never holds a piece longer than the window', async () => {
    const coalescer = createChunkCoalescer(5, 1_000);
    const sent: Array<[number, string]> = [];
    const held = coalescer.open((text) => sent.push([Date.now(), text]));
    const writes: Array<[number, string]> = [];
    // A piece every 2 ms for 40 ms.
    for (let i = 0; i < 20; i++) {
      writes.push([Date.now(), String.fromCharCode(97 + i)]);
      held.write(String.fromCharCode(97 + i));
      await vi.advanceTimersByTimeAsync(2);
    }
    await vi.advanceTimersByTimeAsync(5);
    expect(sent.map(([, text]) => text).join('')).toBe(writes.map(([, p]) => p).join(''));
    for (const [writtenAt, piece] of writes) {
      const [sentAt] = sent.find(([, text]) => text.includes(piece)) ?? [Number.NaN];
      expect(sentAt - writtenAt).toBeLessThanOrEqual(5);
    }
    expect(sent.length).toBeLessThanOrEqual(writes.length / 2);
  });

  it('serves every attempt with one timer and keeps their texts apart', async () => {
    const coalescer = createChunkCoalescer(5, 1_000);
    const a: string[] = [];
    const b: string[] = [];
    const heldA = coalescer.open((text) => a.push(text));
    const heldB = coalescer.open((text) => b.push(text));
    heldA.write('a1');
    heldB.write('b1');
    heldA.write('a2');
    heldB.write('b2');
    heldA.write('a3');
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(5);
    expect(a).toEqual(['a1', 'a2a3']);
    expect(b).toEqual(['b1', 'b2']);
  });

  it('sends what is held at once on flush, and nothing more when the window ends', async () => {
    const coalescer = createChunkCoalescer(5, 1_000);
    const sent: string[] = [];
    const held = coalescer.open((text) => sent.push(text));
    held.write('w');
    held.write('x');
    held.write('y');
    held.flush();
    expect(sent).toEqual(['w', 'xy']);
    held.flush();
    await vi.advanceTimersByTimeAsync(5);
    expect(sent).toEqual(['w', 'xy']);
  });

  it('passes every piece on at once with a window of 0', () => {
    const coalescer = createChunkCoalescer(0, 1_000);
    const sent: string[] = [];
    const held = coalescer.open((text) => sent.push(text));
    held.write('a');
    held.write('b');
    expect(sent).toEqual(['a', 'b']);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('keeps a joined chunk within the size limit; a longer piece goes alone', async () => {
    const coalescer = createChunkCoalescer(5, 4);
    const sent: string[] = [];
    const held = coalescer.open((text) => sent.push(text));
    held.write('z');
    held.write('ab');
    held.write('cde');
    expect(sent).toEqual(['z', 'ab']);
    held.write('f');
    expect(sent).toEqual(['z', 'ab', 'cdef']);
    held.write('0123456');
    expect(sent).toEqual(['z', 'ab', 'cdef', '0123456']);
    held.write('g');
    await vi.advanceTimersByTimeAsync(5);
    expect(sent).toEqual(['z', 'ab', 'cdef', '0123456', 'g']);
  });

  it('drops what is held and stops its timer on close', async () => {
    const coalescer = createChunkCoalescer(5, 1_000);
    const sent: string[] = [];
    const held = coalescer.open((text) => sent.push(text));
    held.write('first');
    held.write('lost');
    coalescer.close();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(10);
    expect(sent).toEqual(['first']);
  });
});
