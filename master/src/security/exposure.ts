/**
 * What a master that listens beyond loopback must have before it starts: API
 * tokens. Without API_TOKENS it generates an admin token on first start, keeps
 * it in FLOTA_DATA_DIR (owner-only file) and reports it once, so such a
 * master never runs open. On loopback nothing is generated: one local user,
 * as before.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../../../common/errors.ts';
import { isLoopbackHost, type TenantToken } from '../config.ts';
import { ensureDataDir } from '../data-dir.ts';

export const GENERATED_TOKENS_FILE = 'api-tokens';
/** The tenant of the generated admin token. */
export const GENERATED_ADMIN_TENANT = 'admin';

export interface Exposure {
  /** The tokens the API accepts: the configured ones, or the generated admin token. */
  tokens: TenantToken[];
  /** Set on the start that generated the admin token: show it to the operator once. */
  generatedToken?: string;
  /** Where the generated token is kept. */
  tokensFile?: string;
  /** Warnings an operator should act on (e.g. no TLS on a network address). */
  warnings: string[];
}

export async function prepareExposure(options: {
  host: string;
  dataDir: string;
  tokens: TenantToken[];
  tls: boolean;
}): Promise<Exposure> {
  const { host, dataDir } = options;
  const warnings: string[] = [];
  if (isLoopbackHost(host)) return { tokens: options.tokens, warnings };
  if (!options.tls) {
    warnings.push(
      `HOST=${host} serves HTTP, gRPC and MQTT without TLS: tokens and prompts cross the network in clear text. Set TLS_CERT and TLS_KEY (see README, Security).`,
    );
  }
  if (options.tokens.length > 0) return { tokens: options.tokens, warnings };

  await ensureDataDir(dataDir);
  const tokensFile = join(dataDir, GENERATED_TOKENS_FILE);
  try {
    const token = (await readFile(tokensFile, 'utf8')).trim();
    if (token.length < 32 || /\s/.test(token)) {
      throw new ConfigError(
        `${tokensFile} holds no usable token: delete it to generate a new one, or set API_TOKENS`,
      );
    }
    return {
      tokens: [{ tenant: GENERATED_ADMIN_TENANT, token, role: 'admin' }],
      tokensFile,
      warnings,
    };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const token = `fla_${randomBytes(24).toString('base64url')}`;
  try {
    await writeFile(tokensFile, `${token}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    throw new ConfigError(
      `HOST=${host} needs API tokens and ${tokensFile} cannot be written (${(err as NodeJS.ErrnoException).code}): set API_TOKENS or a writable FLOTA_DATA_DIR`,
      { cause: err },
    );
  }
  return {
    tokens: [{ tenant: GENERATED_ADMIN_TENANT, token, role: 'admin' }],
    generatedToken: token,
    tokensFile,
    warnings,
  };
}
