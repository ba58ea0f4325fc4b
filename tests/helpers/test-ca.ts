/**
 * A throw-away certificate authority for TLS tests, made with the `openssl`
 * CLI: a CA, a server certificate for 127.0.0.1 / localhost, and client
 * certificates (for mutual TLS) signed by it. Files live in a temporary
 * directory removed by `remove()`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CertFiles {
  cert: string;
  key: string;
}

export interface TestCa {
  dir: string;
  /** The CA certificate (PEM path): what clients trust. */
  caCert: string;
  /** A certificate for 127.0.0.1, ::1 and localhost. */
  server: CertFiles;
  /** A client certificate with this common name, signed by the CA. */
  client(commonName: string): CertFiles;
  /** A PEM file's text. */
  read(path: string): Promise<string>;
  remove(): Promise<void>;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function signed(dir: string, name: string, subject: string, extensions: string): CertFiles {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.crt`);
  const ext = join(dir, `${name}.ext`);
  execFileSync('sh', ['-c', `printf '%s\\n' "$1" > "$2"`, 'sh', extensions, ext]);
  openssl(
    ['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr, '-subj', subject],
    dir,
  );
  openssl(
    [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      cert,
      '-days',
      '2',
      '-sha256',
      '-extfile',
      ext,
    ],
    dir,
  );
  return { cert, key };
}

export async function createTestCa(): Promise<TestCa> {
  const dir = await mkdtemp(join(tmpdir(), 'flota-ca-'));
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '2',
      '-subj',
      '/CN=flota test CA',
    ],
    dir,
  );
  const server = signed(
    dir,
    'server',
    '/CN=localhost',
    'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth',
  );
  return {
    dir,
    caCert: join(dir, 'ca.crt'),
    server,
    client: (commonName) =>
      signed(
        dir,
        `client-${commonName.replace(/[^A-Za-z0-9._-]/g, '_')}`,
        `/CN=${commonName}`,
        'extendedKeyUsage=clientAuth',
      ),
    read: (path) => readFile(path, 'utf8'),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
