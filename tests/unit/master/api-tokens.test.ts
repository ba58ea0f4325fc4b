import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../common/errors.ts';
import { apiTokensOf, loadMasterConfig } from '../../../master/src/config.ts';
import { ApiAuth, scopeSession } from '../../../master/src/http/auth.ts';
import { DEFAULT_TENANT } from '../../../master/src/tasks/task-data.ts';

const TOKEN_A = 'acme-0123456789abcdef';
const TOKEN_A2 = 'acme-rotated-0123456789';
const TOKEN_B = 'globex-0123456789abcdef';

const problemsOf = (env: Record<string, string>): string => {
  try {
    loadMasterConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
};

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flota-tokens-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('API_TOKENS and CACHE_TTL_S', () => {
  it('default to no tokens and no cache', () => {
    const config = loadMasterConfig({});
    expect(apiTokensOf(config)).toEqual([]);
    expect(config.CACHE_TTL_S).toBe(0);
    expect(loadMasterConfig({ CACHE_TTL_S: '600' }).CACHE_TTL_S).toBe(600);
  });

  it('reads tenant:token pairs, several tokens per tenant allowed', () => {
    const config = loadMasterConfig({
      API_TOKENS: ` acme:${TOKEN_A}, globex:${TOKEN_B},acme:${TOKEN_A2} ,`,
    });
    expect(apiTokensOf(config)).toEqual([
      { tenant: 'acme', token: TOKEN_A, role: 'user' },
      { tenant: 'globex', token: TOKEN_B, role: 'user' },
      { tenant: 'acme', token: TOKEN_A2, role: 'user' },
    ]);
  });

  it('reads an optional role after the token: user (the default) or admin', () => {
    const config = loadMasterConfig({
      API_TOKENS: `acme:${TOKEN_A}:user,ops:${TOKEN_B}:admin,acme:${TOKEN_A2}`,
    });
    expect(apiTokensOf(config).map((t) => [t.tenant, t.role])).toEqual([
      ['acme', 'user'],
      ['ops', 'admin'],
      ['acme', 'user'],
    ]);
    expect(apiTokensOf(config)[1]?.token).toBe(TOKEN_B);
  });

  it('reads the same format from API_TOKENS_FILE, one per line, and merges both', async () => {
    const file = join(dir, 'tokens');
    await writeFile(file, `# tenants\nacme:${TOKEN_A}\n\nglobex:${TOKEN_B}\n`);
    const config = loadMasterConfig({ API_TOKENS_FILE: file, API_TOKENS: `acme:${TOKEN_A2}` });
    expect(apiTokensOf(config)).toEqual([
      { tenant: 'acme', token: TOKEN_A2, role: 'user' },
      { tenant: 'acme', token: TOKEN_A, role: 'user' },
      { tenant: 'globex', token: TOKEN_B, role: 'user' },
    ]);
  });

  it('names every bad entry without ever showing a token', () => {
    const secret = 'short-secret';
    const message = problemsOf({
      API_TOKENS: `acme:${secret},no-colon-${TOKEN_A},bad tenant:${TOKEN_B},ok:${TOKEN_A},x:${TOKEN_A}`,
      API_TOKENS_FILE: join(dir, 'missing'),
      CACHE_TTL_S: '-1',
    });
    expect(message).toMatch(/API_TOKENS: entry 1 \(tenant acme\): the token must be at least 16/);
    expect(message).toMatch(/API_TOKENS: entry 2 must be tenant:token/);
    expect(message).toMatch(/API_TOKENS: entry 3 must be tenant:token/);
    expect(message).toMatch(/API_TOKENS_FILE: cannot read .*missing \(ENOENT\)/);
    expect(message).toMatch(/CACHE_TTL_S/);
    for (const token of [secret, TOKEN_A, TOKEN_B]) expect(message).not.toContain(token);
  });

  it('refuses a token listed twice, without showing it', () => {
    const message = problemsOf({ API_TOKENS: `acme:${TOKEN_A},globex:${TOKEN_A}` });
    expect(message).toMatch(/listed more than once/);
    expect(message).not.toContain(TOKEN_A);
  });
});

describe('ApiAuth', () => {
  it('without tokens: every caller is the default tenant, with the admin role', () => {
    const auth = new ApiAuth([]);
    expect(auth.enabled).toBe(false);
    expect(auth.tenantOf(undefined)).toBe(DEFAULT_TENANT);
    expect(auth.tenantOf('anything')).toBe(DEFAULT_TENANT);
    expect(auth.callerOf(undefined)).toEqual({ tenant: DEFAULT_TENANT, role: 'admin' });
  });

  it('gives each token its role, user unless it says admin', () => {
    const auth = new ApiAuth([
      { tenant: 'acme', token: TOKEN_A },
      { tenant: 'ops', token: TOKEN_B, role: 'admin' },
    ]);
    expect(auth.callerOf(TOKEN_A)).toEqual({ tenant: 'acme', role: 'user' });
    expect(auth.callerOf(TOKEN_B)).toEqual({ tenant: 'ops', role: 'admin' });
    expect(auth.callerOf('not-a-token-0123456789')).toBeUndefined();
  });

  it('with tokens: a known token names its tenant, anything else none', () => {
    const auth = new ApiAuth([
      { tenant: 'acme', token: TOKEN_A },
      { tenant: 'acme', token: TOKEN_A2 },
      { tenant: 'globex', token: TOKEN_B },
    ]);
    expect(auth.enabled).toBe(true);
    expect(auth.tenantCount).toBe(2);
    expect(auth.tenantOf(TOKEN_A)).toBe('acme');
    expect(auth.tenantOf(TOKEN_A2)).toBe('acme');
    expect(auth.tenantOf(TOKEN_B)).toBe('globex');
    for (const wrong of [
      undefined,
      '',
      42,
      `${TOKEN_A} `,
      TOKEN_A.toUpperCase(),
      'x'.repeat(5_000),
    ]) {
      expect(auth.tenantOf(wrong)).toBeUndefined();
    }
  });

  it('scopes session ids per tenant, leaving the default tenant as it was', () => {
    expect(scopeSession(DEFAULT_TENANT, 'session-1')).toBe('session-1');
    expect(scopeSession('acme', 'session-1')).toBe('acme:session-1');
    expect(scopeSession('acme', 'session-1')).not.toBe(scopeSession('globex', 'session-1'));
  });
});
