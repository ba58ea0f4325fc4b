import { describe, expect, it } from 'vitest';
import { scrubSecrets } from '../../../worker/src/providers/scrub.ts';
import { sseData } from '../../../worker/src/providers/sse.ts';

describe('scrubSecrets', () => {
  it('removes known secrets and key-looking tokens', () => {
    const text =
      'failed for my-secret-key: Authorization: Bearer abc.def url?key=AIzaSyA1234567890123456789012 sk-abcdefghijklmnopqrstu';
    const out = scrubSecrets(text, ['my-secret-key', undefined]);
    expect(out).not.toContain('my-secret-key');
    expect(out).not.toContain('abc.def');
    expect(out).not.toContain('AIzaSy');
    expect(out).not.toContain('sk-abcdef');
    expect(out).toContain('[redacted]');
  });
});

function bodyOf(parts: string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const part of parts) controller.enqueue(encoder.encode(part));
      controller.close();
    },
  });
}

describe('sseData', () => {
  it('yields data payloads across split chunks and CRLF delimiters', async () => {
    const seen: string[] = [];
    for await (const data of sseData(
      bodyOf([
        'data: {"a"',
        ':1}\r\n\r\n: comment\n',
        'data: two\n\ndata: [DONE]\n\n',
        'data: tail',
      ]),
    )) {
      seen.push(data);
    }
    expect(seen).toEqual(['{"a":1}', 'two', '[DONE]', 'tail']);
  });
});
