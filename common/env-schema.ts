/**
 * The one way a flota process reads its environment: a zod object schema
 * keyed by variable name, each field's meaning in `.describe()` (or
 * `.meta({ description, shownDefault })` when its default is computed), so
 * docs/CONFIGURATION.md is generated from the schemas themselves.
 *
 * The conventions, the same for master, worker and autoscaler:
 * - a blank value counts as unset, so `FOO=` in a compose file means "default";
 * - values are trimmed; numbers are written in decimal;
 * - every problem is reported at once, one line each, named by its variable,
 *   showing the value it had unless the variable holds a secret.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from './errors.ts';

declare module 'zod' {
  interface GlobalMeta {
    /** The default as the docs show it, for a variable whose default is computed at start. */
    shownDefault?: string;
  }
}

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** LOG_LEVEL, read the same way by every process. */
export const logLevel = () =>
  z
    .enum(LOG_LEVELS)
    .default('info')
    .describe('`trace`, `debug`, `info`, `warn`, `error`, `fatal`, `silent`');

const NUMBER = /^-?\d+(\.\d+)?$/;

/** A decimal number; zod's own coercion would also take `1e3`, `0x10` and blanks. */
const decimal = z.string().regex(NUMBER, 'expected a number').transform(Number);

const wholeNumber = (min: number, max: number) => decimal.pipe(z.number().int().min(min).max(max));

/** A whole number in [min, max]. */
export const int = (min: number, max: number, fallback: number) =>
  wholeNumber(min, max).default(fallback);

/** A whole number in [min, max] whose default is computed at start. */
export const optionalInt = (min: number, max: number) => wholeNumber(min, max).optional();

/** A decimal number in (gtMin, max]. */
export const fraction = (gtMin: number, max: number, fallback: number) =>
  decimal.pipe(z.number().gt(gtMin).max(max)).default(fallback);

export const port = (fallback: number) => int(0, 65_535, fallback);

const ON = /^(1|true|yes|on)$/i;
const ON_OR_OFF = /^(1|0|true|false|yes|no|on|off)$/i;

/** The usual spellings of on and off, in any case. */
const onOff = z
  .string()
  .regex(ON_OR_OFF, 'expected 1/0, true/false, yes/no or on/off')
  .transform((v) => ON.test(v));

export const flag = (fallback: boolean) => onOff.default(fallback);

/** On or off, with a default computed at start. */
export const optionalFlag = () => onOff.optional();

/** `a, b,c` → ['a', 'b', 'c']; empty entries are dropped. */
export const commaList = z.string().transform((v) =>
  v
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== ''),
);

/** The text of a file a variable names, or an issue saying why it cannot be read. */
export function readNamedFile(path: string, ctx: z.RefinementCtx): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    ctx.addIssue({ code: 'custom', message: `cannot read ${path} (${code})` });
    return undefined;
  }
}

/** A PEM file (certificate, key or CA bundle) read at start: its path and its text. */
export const pemFile = z
  .string()
  .transform((path, ctx) => {
    const text = readNamedFile(path, ctx);
    if (text !== undefined && !text.includes('-----BEGIN ')) {
      ctx.addIssue({ code: 'custom', message: `${path} is not a PEM file` });
      return undefined;
    }
    return text === undefined ? undefined : { path, pem: text };
  })
  .optional();

/** A secret read from a file (a Docker secret), trimmed. */
export const secretFile = z
  .string()
  .transform((path, ctx) => readNamedFile(path, ctx)?.trim())
  .optional();

/** Variables whose value a problem report never repeats. */
const SECRET_NAME = /TOKEN|SECRET|PASSWORD|KEY/;

/** The variables a schema reads that are set (trimmed, blanks dropped). */
export function presentValues(
  env: Record<string, string | undefined>,
  names: readonly string[],
): Record<string, string> {
  const values: Record<string, string> = {};
  for (const name of names) {
    const value = env[name]?.trim();
    if (value !== undefined && value !== '') values[name] = value;
  }
  return values;
}

/** One line per problem, naming the variable and (unless secret) the value it had. */
function describeIssue(issue: z.core.$ZodIssue, input: Record<string, string>): string {
  const name = issue.path.join('.') || '(env)';
  const raw = typeof issue.path[0] === 'string' ? input[issue.path[0]] : undefined;
  const shown =
    raw !== undefined && !SECRET_NAME.test(name) && !issue.message.includes(raw)
      ? JSON.stringify(raw)
      : undefined;
  if (issue.code === 'invalid_format' && issue.message === 'expected a number') {
    return `${name}: expected a number${shown ? `, got ${shown}` : ''}`;
  }
  if (issue.code === 'invalid_type' && issue.expected === 'int') {
    return `${name}: expected a whole number${shown ? `, got ${shown}` : ''}`;
  }
  return `${name}: ${issue.message}${shown ? ` (got ${shown})` : ''}`;
}

/**
 * Parses the variables `schema` names; `defaults` fill those the environment
 * leaves unset. Returns the data, or the problems as `NAME: what is wrong`.
 */
export function parseEnv<S extends z.ZodObject>(
  schema: S,
  env: NodeJS.ProcessEnv,
  defaults: Record<string, string | undefined> = {},
): { data: z.output<S> | undefined; problems: string[] } {
  const names = Object.keys(schema.shape);
  const input = { ...presentValues(defaults, names), ...presentValues(env, names) };
  const parsed = schema.safeParse(input);
  if (parsed.success) return { data: parsed.data, problems: [] };
  return { data: undefined, problems: parsed.error.issues.map((i) => describeIssue(i, input)) };
}

/** The ConfigError a process stops with: every problem, one line each. */
export function configError(processName: string, problems: string[]): ConfigError {
  const lines = [...new Set(problems)].map((p) => `  - ${p}`);
  return new ConfigError(`invalid ${processName} configuration:\n${lines.join('\n')}`);
}

/** One variable as the reference docs show it. */
export interface DocumentedVariable {
  name: string;
  /** Markdown: `` `8080` ``, `unset`, or the field's shownDefault. */
  shownDefault: string;
  description: string;
}

/** The default a schema applies when its variable is unset, if any. */
function defaultOf(schema: z.core.$ZodType): unknown {
  const def = schema._zod.def as unknown as {
    type: string;
    defaultValue?: unknown;
    in?: z.core.$ZodType;
    out?: z.core.$ZodType;
    innerType?: z.core.$ZodType;
  };
  if (def.type === 'default') return def.defaultValue;
  if (def.type === 'pipe' && def.in && def.out) return defaultOf(def.out) ?? defaultOf(def.in);
  if (def.innerType) return defaultOf(def.innerType);
  return undefined;
}

function showDefault(value: unknown): string {
  const empty =
    value === undefined ||
    (Array.isArray(value) && value.length === 0) ||
    (typeof value === 'object' && value !== null && Object.keys(value).length === 0);
  if (empty) return 'unset';
  return `\`${Array.isArray(value) ? value.join(',') : String(value)}\``;
}

/** Every variable of an env schema with its default and meaning, in schema order. */
export function documentedVariables(schema: z.ZodObject): DocumentedVariable[] {
  return Object.entries(schema.shape).map(([name, field]) => {
    const meta = z.globalRegistry.get(field as z.ZodType);
    if (!meta?.description) throw new Error(`${name}: no description for the docs`);
    return {
      name,
      shownDefault: meta.shownDefault ?? showDefault(defaultOf(field as z.core.$ZodType)),
      description: meta.description,
    };
  });
}
