/**
 * The security settings for the chosen HOST, as master/src/security/
 * exposure.ts applies them: loopback is local only; any other address
 * needs TLS (or traffic crosses the network in clear text) and API tokens
 * (generated on first start when none are set). TLS files must hold a
 * certificate and the key that belongs to it.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { join, resolve } from 'node:path';
import { isLoopbackHost } from '../../master/src/config.ts';
import { GENERATED_TOKENS_FILE } from '../../master/src/security/exposure.ts';
import { type CheckResult, fail, pass, reasonOf } from './result.ts';

export interface ExposureFacts {
  host: string;
  tls: boolean;
  /** API tokens configured (API_TOKENS, API_TOKENS_FILE). */
  tokens: number;
  admins: number;
  dataDir: string;
  /** The admin token generated on an earlier start is already there. */
  generatedTokenExists: boolean;
}

export function exposureVerdicts(facts: ExposureFacts): CheckResult[] {
  const { host } = facts;
  if (isLoopbackHost(host)) return [pass('security:host', `HOST=${host}: local only`)];
  const results = [
    facts.tls
      ? pass('security:host', `HOST=${host}: open to the network, over TLS`)
      : fail(
          'security:host',
          `HOST=${host} without TLS`,
          'traffic in clear text: tokens and prompts cross the network unencrypted',
          'Set TLS_CERT and TLS_KEY (PEM files; README, Security)',
        ),
  ];
  if (facts.tokens > 0) {
    const admins = facts.admins === 1 ? '1 admin' : `${facts.admins} admins`;
    results.push(pass('security:tokens', `API tokens: ${facts.tokens} (${admins})`));
    return results;
  }
  const file = join(resolve(facts.dataDir), GENERATED_TOKENS_FILE);
  results.push(
    pass(
      'security:tokens',
      facts.generatedTokenExists
        ? `no API_TOKENS: the API takes the admin token generated earlier, in ${file}`
        : `no API_TOKENS: an admin token is generated on first start, printed once and kept in ${file}`,
    ),
  );
  return results;
}

export interface PemFile {
  path: string;
  pem: string;
}

export interface TlsFiles {
  cert?: PemFile;
  key?: PemFile;
  ca?: PemFile;
}

/** Certificate and key parse, belong together and are valid `now`; the CA parses. */
export function tlsVerdict(files: TlsFiles, now: Date): CheckResult | undefined {
  const { cert, key, ca } = files;
  if (!cert || !key) return undefined;
  const check = 'security:tls-files';
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert.pem);
  } catch (err) {
    return fail(
      check,
      `TLS_CERT ${cert.path}`,
      `not a certificate (${reasonOf(err)})`,
      'Point TLS_CERT at the PEM certificate',
    );
  }
  try {
    if (!certificate.checkPrivateKey(createPrivateKey(key.pem))) {
      return fail(
        check,
        `TLS_KEY ${key.path}`,
        `not the key of the certificate in ${cert.path}`,
        'Point TLS_KEY at the key the certificate was issued for',
      );
    }
  } catch (err) {
    return fail(
      check,
      `TLS_KEY ${key.path}`,
      `not a private key (${reasonOf(err)})`,
      'Point TLS_KEY at the PEM private key',
    );
  }
  const from = new Date(certificate.validFrom);
  const to = new Date(certificate.validTo);
  if (now < from || now > to) {
    return fail(
      check,
      `TLS_CERT ${cert.path}`,
      now > to ? `expired on ${to.toISOString()}` : `not valid before ${from.toISOString()}`,
      now > to
        ? 'Renew the certificate'
        : 'Check this machine’s clock, or use a certificate valid now',
    );
  }
  if (ca) {
    try {
      new X509Certificate(ca.pem);
    } catch (err) {
      return fail(
        check,
        `TLS_CA ${ca.path}`,
        `not a certificate (${reasonOf(err)})`,
        'Point TLS_CA at the PEM CA certificate',
      );
    }
  }
  return pass(check, `TLS certificate and key match, valid until ${to.toISOString().slice(0, 10)}`);
}
