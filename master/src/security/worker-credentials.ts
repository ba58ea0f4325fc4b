/**
 * Worker credentials: one per worker id, signed with the installation's
 * secret, so the master checks one without a lookup and `flota token worker`
 * can print one on the master's machine without asking the master.
 *
 *   fwt1.<workerId>.<issued, base 36 ms>.<HMAC-SHA256, base64url>
 *
 * A credential names its worker: the broker and the gRPC server let it act
 * only as that worker. Revoking a worker id refuses every credential issued
 * for it until then (a later `flota token worker ID` issues a fresh one); the
 * list of revocations is kept in the data dir so it outlives a restart.
 *
 * Join tokens (`fjt1.<id prefix>.<issued>.<mac>`) are the other kind: they
 * let a worker whose id is only known when it starts (a Swarm replica) ask
 * the master for its own worker credential, for an id under that prefix.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { chmod, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../../../common/errors.ts';
import { TOPIC_ID_PATTERN } from '../../../proto/src/topics.ts';
import { ensureDataDir } from '../data-dir.ts';

const WORKER_KIND = 'fwt1';
const JOIN_KIND = 'fjt1';
/** Shortest secret accepted from FLOTA_SECRET / FLOTA_SECRET_FILE. */
export const MIN_SECRET_CHARS = 32;
/** Longest credential looked at; longer input is refused unread. */
export const MAX_CREDENTIAL_CHARS = 512;
export const SECRET_FILE = 'secret';
export const REVOCATIONS_FILE = 'revoked-workers.json';
/** A join prefix is the start of a worker id: `cpu-`, `gpu-node7-`, or empty for any id. */
const JOIN_PREFIX = /^[A-Za-z0-9._:-]{0,64}$/;

export type CredentialRefusal = 'malformed' | 'bad_signature' | 'revoked' | 'wrong_worker';
export type WorkerCheck = { ok: true; workerId: string } | { ok: false; reason: CredentialRefusal };
export type JoinCheck =
  | { ok: true; prefix: string }
  | { ok: false; reason: 'malformed' | 'bad_signature' };

/** Human text for a refusal, safe to send to the caller (it never quotes the credential). */
export const REFUSAL_TEXT: Record<CredentialRefusal, string> = {
  malformed: 'the worker credential is malformed (expected fwt1.<id>.<issued>.<signature>)',
  bad_signature: 'the worker credential was not issued by this installation',
  revoked: 'the worker credential has been revoked',
  wrong_worker: 'the worker credential belongs to another worker id',
};

export interface WorkerCredentialsEvents {
  /** A worker id was revoked: cut its open connections now. */
  revoked: [workerId: string];
}

export interface OpenCredentialsOptions {
  /** FLOTA_DATA_DIR: holds the generated secret and the revocation list. */
  dataDir: string;
  /** FLOTA_SECRET / FLOTA_SECRET_FILE; unset → `${dataDir}/secret`, generated on first use. */
  secret?: string;
}

const b64url = (buf: Buffer) => buf.toString('base64url');

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Writes a file readable by its owner only, atomically (no half-written secret after a crash). */
async function writePrivate(path: string, text: string): Promise<void> {
  const temp = `${path}.${process.pid}.tmp`;
  await writeFile(temp, text, { mode: 0o600 });
  await chmod(temp, 0o600);
  await rename(temp, path);
}

/** The secret: the configured one, else the data dir's, generated (and kept) on first use. */
async function loadSecret(dataDir: string, configured: string | undefined) {
  if (configured !== undefined) return { secret: configured, generated: false };
  await ensureDataDir(dataDir);
  const path = join(dataDir, SECRET_FILE);
  try {
    const text = (await readFile(path, 'utf8')).trim();
    if (text.length >= MIN_SECRET_CHARS) return { secret: text, generated: false };
    throw new ConfigError(
      `${path} holds no usable secret (under ${MIN_SECRET_CHARS} characters): delete it to generate a new one (every worker credential then changes)`,
    );
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const secret = randomBytes(32).toString('hex');
  await writePrivate(path, `${secret}\n`);
  return { secret, generated: true };
}

export class WorkerCredentials extends EventEmitter<WorkerCredentialsEvents> {
  /** Worker id → when it was revoked (ms); credentials issued at or before it are refused. */
  private readonly revokedAt: Map<string, number>;

  private constructor(
    private readonly secret: string,
    revoked: Record<string, number>,
    private readonly revocationsPath: string,
    /** True when this start created the secret (a fresh data dir). */
    readonly generated: boolean,
  ) {
    super();
    this.revokedAt = new Map(Object.entries(revoked));
  }

  static async open(options: OpenCredentialsOptions): Promise<WorkerCredentials> {
    const { secret, generated } = await loadSecret(options.dataDir, options.secret);
    const revocationsPath = join(options.dataDir, REVOCATIONS_FILE);
    let revoked: Record<string, number> = {};
    try {
      const parsed: unknown = JSON.parse(await readFile(revocationsPath, 'utf8'));
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
        for (const [id, at] of Object.entries(parsed)) {
          if (TOPIC_ID_PATTERN.test(id) && Number.isSafeInteger(at)) revoked[id] = at as number;
        }
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new ConfigError(
          `${revocationsPath} cannot be read as JSON: fix or delete it (deleting it restores every revoked worker)`,
          { cause: err },
        );
      }
      revoked = {};
    }
    return new WorkerCredentials(secret, revoked, revocationsPath, generated);
  }

  private mac(body: string): string {
    return b64url(createHmac('sha256', this.secret).update(body).digest());
  }

  /** A fresh credential for `workerId`; valid until the id is revoked. */
  issue(workerId: string): string {
    if (!TOPIC_ID_PATTERN.test(workerId)) {
      throw new ConfigError(`invalid worker id ${JSON.stringify(workerId)}`);
    }
    // Strictly after any revocation of the same id, even within the same millisecond.
    const issued = Math.max(Date.now(), (this.revokedAt.get(workerId) ?? -1) + 1);
    const body = `${WORKER_KIND}.${workerId}.${issued.toString(36)}`;
    return `${body}.${this.mac(body)}`;
  }

  /** Checks a presented credential; with `workerId`, it must be that worker's. */
  check(token: unknown, workerId?: string): WorkerCheck {
    const parts = this.split(token, WORKER_KIND);
    if (!parts) return { ok: false, reason: 'malformed' };
    const { subject, issued, body, mac } = parts;
    if (!TOPIC_ID_PATTERN.test(subject)) return { ok: false, reason: 'malformed' };
    if (!sameText(mac, this.mac(body))) return { ok: false, reason: 'bad_signature' };
    if (workerId !== undefined && workerId !== subject)
      return { ok: false, reason: 'wrong_worker' };
    const revoked = this.revokedAt.get(subject);
    if (revoked !== undefined && issued <= revoked) return { ok: false, reason: 'revoked' };
    return { ok: true, workerId: subject };
  }

  /** A join token for worker ids starting with `prefix` (empty: any id). */
  issueJoin(prefix: string): string {
    if (!JOIN_PREFIX.test(prefix)) {
      throw new ConfigError(`invalid join prefix ${JSON.stringify(prefix)}`);
    }
    const body = `${JOIN_KIND}.${prefix}.${Date.now().toString(36)}`;
    return `${body}.${this.mac(body)}`;
  }

  checkJoin(token: unknown): JoinCheck {
    const parts = this.split(token, JOIN_KIND);
    if (!parts || !JOIN_PREFIX.test(parts.subject)) return { ok: false, reason: 'malformed' };
    if (!sameText(parts.mac, this.mac(parts.body))) return { ok: false, reason: 'bad_signature' };
    return { ok: true, prefix: parts.subject };
  }

  /** Refuses every credential issued so far for `workerId`, persists that, and tells listeners. */
  async revoke(workerId: string): Promise<{ workerId: string; revokedAt: number }> {
    if (!TOPIC_ID_PATTERN.test(workerId)) {
      throw new ConfigError(`invalid worker id ${JSON.stringify(workerId)}`);
    }
    const revokedAt = Date.now();
    this.revokedAt.set(workerId, revokedAt);
    await writePrivate(
      this.revocationsPath,
      `${JSON.stringify(Object.fromEntries(this.revokedAt), null, 2)}\n`,
    );
    this.emit('revoked', workerId);
    return { workerId, revokedAt };
  }

  isRevoked(workerId: string): boolean {
    return this.revokedAt.has(workerId);
  }

  /** `<kind>.<subject>.<issued>.<mac>`, where the subject may itself contain dots. */
  private split(token: unknown, kind: string) {
    if (typeof token !== 'string' || token.length > MAX_CREDENTIAL_CHARS) return undefined;
    if (!token.startsWith(`${kind}.`)) return undefined;
    const macDot = token.lastIndexOf('.');
    const issuedDot = token.lastIndexOf('.', macDot - 1);
    // An empty subject (a join token for any id) leaves `kind..issued.mac`.
    if (issuedDot < kind.length + 1) return undefined;
    const subject = token.slice(kind.length + 1, issuedDot);
    const issuedText = token.slice(issuedDot + 1, macDot);
    const mac = token.slice(macDot + 1);
    if (!/^[0-9a-z]{1,12}$/.test(issuedText) || !/^[A-Za-z0-9_-]{43}$/.test(mac)) return undefined;
    return {
      subject,
      issued: Number.parseInt(issuedText, 36),
      body: token.slice(0, macDot),
      mac,
    };
  }
}
