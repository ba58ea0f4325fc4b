import { describe, expect, it } from 'vitest';
import { formatZodError } from '../../../common/zod-error.ts';
import { isStorableText, submitTaskSchema } from '../../../proto/src/schemas/task.ts';
import { socketSubmitSchema } from '../../../proto/src/socket-events.ts';

/** Parses the body as a client sends it: JSON text, so `__proto__` is an own key. */
const parseJson = (text: string) => submitTaskSchema.safeParse(JSON.parse(text));

describe('task input hygiene', () => {
  it('knows storable text: no NUL, no lone surrogate; pairs and emoji are fine', () => {
    expect(isStorableText('plain text, ünïcödé, 漢字, 😀')).toBe(true);
    expect(isStorableText('a\u0000b')).toBe(false);
    expect(isStorableText('a\ud800b')).toBe(false);
    expect(isStorableText('a\udc00')).toBe(false);
    expect(isStorableText('\ud83d')).toBe(false);
    expect(isStorableText('\ude00\ud83d')).toBe(false);
  });

  const refused: Array<[string, string, RegExp]> = [
    ['a NUL in the prompt', '{"prompt":"a\\u0000b"}', /prompt: .*NUL/],
    ['a lone surrogate in the prompt', '{"prompt":"a\\ud800b"}', /prompt: .*surrogate/],
    [
      'a NUL in a history message',
      '{"prompt":"hi","messages":[{"role":"user","content":"\\u0000"}]}',
      /messages\.0\.content/,
    ],
    ['a lone surrogate in the model', '{"prompt":"hi","model":"gpt\\udfff"}', /model/],
    [
      'a NUL in a label value',
      '{"prompt":"hi","requires":{"labels":{"zone":"eu\\u0000"}}}',
      /requires\.labels/,
    ],
    [
      'a lone surrogate in a label key',
      '{"prompt":"hi","requires":{"labels":{"z\\ud800":"eu"}}}',
      /requires\.labels/,
    ],
    [
      'the label key __proto__',
      '{"prompt":"hi","requires":{"labels":{"__proto__":"x"}}}',
      /"__proto__" is reserved/,
    ],
    [
      'the label key constructor',
      '{"prompt":"hi","requires":{"labels":{"constructor":"x"}}}',
      /"constructor" is reserved/,
    ],
    [
      'the label key prototype',
      '{"prompt":"hi","requires":{"labels":{"prototype":"x","zone":"eu"}}}',
      /"prototype" is reserved/,
    ],
  ];
  for (const [what, body, reason] of refused) {
    it(`refuses ${what}, naming the field`, () => {
      const parsed = parseJson(body);
      expect(parsed.success).toBe(false);
      if (!parsed.success) expect(formatZodError(parsed.error)).toMatch(reason);
    });
  }

  it('accepts ordinary labels and text, and a clientId with a NUL is refused on Socket.IO', () => {
    const ok = parseJson('{"prompt":"hi 😀","requires":{"labels":{"zone":"eu","proto":"x"}}}');
    expect(ok.success).toBe(true);
    expect(ok.data?.requires?.labels).toEqual({ zone: 'eu', proto: 'x' });
    expect(socketSubmitSchema.safeParse({ prompt: 'hi', clientId: 'c\u0000' }).success).toBe(false);
  });
});
