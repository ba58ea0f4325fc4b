import { describe, expect, it } from 'vitest';
import { refusalOf } from '../../../worker/src/controls.ts';

describe('refusalOf (live config)', () => {
  it('refuses models a local provider has no file for, and lets a remote provider try any', () => {
    const has = new Set(['a.gguf', 'b.gguf']);
    expect(refusalOf({ models: ['a.gguf'] }, has)).toBeUndefined();
    expect(refusalOf({ models: ['a.gguf', 'c.gguf'] }, has)).toMatch(/cannot serve c\.gguf/);
    expect(refusalOf({ models: ['anything'] }, undefined)).toBeUndefined();
    expect(refusalOf({ slots: 3 }, has)).toBeUndefined();
  });
});
