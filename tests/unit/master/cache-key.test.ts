import { describe, expect, it } from 'vitest';
import { cacheKey, canonicalJson } from '../../../master/src/cache/cache-key.ts';

const base = {
  tenant: 'default',
  model: 'echo',
  prompt: 'hello',
  messages: [
    { role: 'user' as const, content: 'hi' },
    { role: 'assistant' as const, content: 'echo: hi' },
  ],
  params: { temperature: 0.2, maxTokens: 100 },
};

describe('canonicalJson', () => {
  it('sorts object keys at every depth and keeps array order', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } })).toBe(
      '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}',
    );
  });

  it('drops undefined members, as JSON does', () => {
    expect(canonicalJson({ a: undefined, b: 2 })).toBe('{"b":2}');
    expect(canonicalJson([undefined, 1])).toBe('[null,1]');
  });
});

describe('cacheKey', () => {
  it('is 64 hex digits and the same for the same request in any field order', () => {
    const key = cacheKey(base);
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    const reordered = {
      params: { maxTokens: 100, temperature: 0.2 },
      prompt: 'hello',
      messages: base.messages.map((m) => ({ content: m.content, role: m.role })),
      model: 'echo',
      tenant: 'default',
    };
    expect(cacheKey(reordered)).toBe(key);
  });

  it('treats absent and empty history, and absent and empty params, alike', () => {
    const bare = { tenant: 't', model: 'm', prompt: 'p' };
    expect(cacheKey({ ...bare, messages: [], params: {} })).toBe(cacheKey(bare));
    expect(cacheKey({ ...bare, params: { temperature: undefined } })).toBe(cacheKey(bare));
  });

  it('ignores fields that are not part of the request (ids, keys, times)', () => {
    const job = { ...base, taskId: 'any.echo.x', apiKey: 'secret', submittedAt: 1, priority: 7 };
    expect(cacheKey(job)).toBe(cacheKey(base));
  });

  it('differs when anything the answer depends on differs', () => {
    const key = cacheKey(base);
    const variants = [
      { ...base, tenant: 'acme' },
      { ...base, model: 'llama3:8b' },
      { ...base, prompt: 'hello!' },
      { ...base, messages: base.messages.slice(0, 1) },
      { ...base, messages: [...base.messages].reverse() },
      { ...base, params: { temperature: 0.3, maxTokens: 100 } },
      { ...base, params: { temperature: 0.2 } },
    ];
    const keys = variants.map(cacheKey);
    expect(keys).not.toContain(key);
    expect(new Set(keys).size).toBe(variants.length);
  });

  it('cannot be confused by a prompt that looks like another field', () => {
    const a = { tenant: 'a', model: 'm', prompt: 'x","tenant":"b' };
    const b = { tenant: 'b', model: 'm', prompt: 'x' };
    expect(cacheKey(a)).not.toBe(cacheKey(b));
  });
});
