import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  configError,
  documentedVariables,
  flag,
  int,
  optionalInt,
  parseEnv,
} from '../../../common/env-schema.ts';

const schema = z.object({
  SIZE: int(1, 10, 4).describe('how many'),
  LIMIT: optionalInt(0, 100).meta({ shownDefault: 'computed', description: 'at most' }),
  LOUD: flag(false).describe('shout'),
  API_TOKEN: z.string().min(16).optional().describe('secret'),
});

describe('parseEnv', () => {
  it('applies defaults, trims, and counts a blank value as unset', () => {
    expect(parseEnv(schema, { SIZE: ' 7 ', LOUD: '  ', LIMIT: '' }).data).toEqual({
      SIZE: 7,
      LOUD: false,
    });
  });

  it('reads the usual spellings of on and off in any case', () => {
    for (const on of ['1', 'true', 'YES', 'On'])
      expect(parseEnv(schema, { LOUD: on }).data?.LOUD).toBe(true);
    for (const off of ['0', 'False', 'no', 'OFF'])
      expect(parseEnv(schema, { LOUD: off }).data?.LOUD).toBe(false);
  });

  it('reports one line per problem, with the value unless the variable is secret', () => {
    const { data, problems } = parseEnv(schema, {
      SIZE: '1e3',
      LIMIT: '2.5',
      LOUD: 'maybe',
      API_TOKEN: 'short-secret',
    });
    expect(data).toBeUndefined();
    expect(problems).toEqual([
      'SIZE: expected a number, got "1e3"',
      'LIMIT: expected a whole number, got "2.5"',
      'LOUD: expected 1/0, true/false, yes/no or on/off (got "maybe")',
      expect.stringMatching(/^API_TOKEN: (?![\s\S]*short-secret)/),
    ]);
    expect(configError('demo', problems).message.split('\n')[0]).toBe(
      'invalid demo configuration:',
    );
  });

  it('fills unset variables from the defaults it is given', () => {
    expect(parseEnv(schema, { SIZE: '2' }, { SIZE: '3', LIMIT: '9' }).data).toMatchObject({
      SIZE: 2,
      LIMIT: 9,
    });
  });
});

describe('documentedVariables', () => {
  it("shows each variable's default and meaning from the schema", () => {
    expect(documentedVariables(schema)).toEqual([
      { name: 'SIZE', shownDefault: '`4`', description: 'how many' },
      { name: 'LIMIT', shownDefault: 'computed', description: 'at most' },
      { name: 'LOUD', shownDefault: '`false`', description: 'shout' },
      { name: 'API_TOKEN', shownDefault: 'unset', description: 'secret' },
    ]);
  });

  it('refuses a variable without a meaning', () => {
    expect(() => documentedVariables(z.object({ BARE: z.string() }))).toThrow(/BARE/);
  });
});
