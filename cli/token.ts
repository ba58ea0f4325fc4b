/**
 * `flota token worker|join|revoke`: the fleet's credentials, asked of the
 * master's admin API (an admin token when the master sets API_TOKENS). A
 * credential or join token goes to stdout alone, so a script can take it
 * (`WORKER_TOKEN=$(flota token worker cpu-1)`); the hint goes to stderr.
 */
import { randomBytes } from 'node:crypto';
import { Command } from 'commander';
import { z } from 'zod';
import {
  type CredentialResponse,
  credentialResponseSchema,
  type JoinTokenResponse,
  joinPrefixSchema,
  joinTokenResponseSchema,
  type RevokeResponse,
  revokeResponseSchema,
} from '../proto/src/schemas/admin.ts';
import { workerIdSchema } from '../proto/src/schemas/worker.ts';
import {
  api,
  baseOf,
  type ClientOptions,
  check,
  clientSchema,
  type MasterAddress,
  tokenOption,
  urlOption,
} from './master-api.ts';

const workerPath = (workerId: string, what: 'credential' | 'revoke') =>
  `/api/workers/${encodeURIComponent(workerId)}/${what}`;

/** A fresh credential for `workerId` from the master at `address` (what `flota up` gives its workers). */
export async function issueWorkerCredential(
  address: MasterAddress,
  workerId: string,
): Promise<string> {
  const reply = await api<CredentialResponse>(
    `${baseOf(address.url)}${workerPath(workerId, 'credential')}`,
    address.token,
    { method: 'POST', body: '{}' },
    credentialResponseSchema,
    address.ca,
  );
  return reply.credential;
}

/** A worker id nobody chose: `worker-` and 8 hex digits. */
export const randomWorkerId = () => `worker-${randomBytes(4).toString('hex')}`;

export async function tokenWorkerCommand(
  id: string | undefined,
  opts: ClientOptions,
): Promise<number> {
  const address = check(clientSchema, opts);
  const { id: workerId } = check(z.object({ id: workerIdSchema }), { id: id ?? randomWorkerId() });
  const credential = await issueWorkerCredential(address, workerId);
  if (opts.json) {
    console.log(JSON.stringify({ workerId, credential } satisfies CredentialResponse));
    return 0;
  }
  console.log(credential);
  console.error(`start it with: WORKER_ID=${workerId} WORKER_TOKEN=${credential} flota worker`);
  return 0;
}

export async function tokenJoinCommand(
  prefix: string | undefined,
  opts: ClientOptions,
): Promise<number> {
  const address = check(clientSchema, opts);
  const body = check(z.object({ prefix: joinPrefixSchema }), { prefix: prefix ?? '' });
  const reply = await api<JoinTokenResponse>(
    `${baseOf(address.url)}/api/workers/join-tokens`,
    address.token,
    { method: 'POST', body: JSON.stringify(body) },
    joinTokenResponseSchema,
  );
  if (opts.json) {
    console.log(JSON.stringify(reply));
    return 0;
  }
  console.log(reply.joinToken);
  console.error(
    `start workers with: WORKER_JOIN_TOKEN=${reply.joinToken} WORKER_ID=${reply.prefix}… flota worker` +
      (reply.prefix ? ` (any id that starts with "${reply.prefix}")` : ' (any id)'),
  );
  return 0;
}

export async function tokenRevokeCommand(id: string, opts: ClientOptions): Promise<number> {
  const address = check(clientSchema, opts);
  const { id: workerId } = check(z.object({ id: workerIdSchema }), { id });
  const reply = await api<RevokeResponse>(
    `${baseOf(address.url)}${workerPath(workerId, 'revoke')}`,
    address.token,
    { method: 'POST', body: '{}' },
    revokeResponseSchema,
  );
  if (opts.json) console.log(JSON.stringify(reply));
  else
    console.log(
      `${reply.workerId} revoked at ${new Date(reply.revokedAt).toISOString()}: its credentials no longer work`,
    );
  return 0;
}

/** `flota token …`, ready for `program.addCommand`. */
export function tokenCommand(): Command {
  const withClientOptions = (command: Command) =>
    command
      .addOption(urlOption())
      .addOption(tokenOption())
      .option('--json', 'print the answer as JSON', false);
  const worker = withClientOptions(
    new Command('worker')
      .description('issue a worker its own credential (its WORKER_TOKEN)')
      .argument('[id]', 'the worker id (default: worker-<random>)'),
  ).action(async (id: string | undefined, opts: ClientOptions) => {
    process.exitCode = await tokenWorkerCommand(id, opts);
  });
  const join = withClientOptions(
    new Command('join')
      .description(
        'issue a join token: workers whose id starts with PREFIX enroll with it and get their own credential',
      )
      .argument('[prefix]', 'the start of the worker ids it admits (default: any id)'),
  ).action(async (prefix: string | undefined, opts: ClientOptions) => {
    process.exitCode = await tokenJoinCommand(prefix, opts);
  });
  const revoke = withClientOptions(
    new Command('revoke')
      .description('revoke a worker: its credentials stop working and it is disconnected')
      .argument('<id>', 'the worker id'),
  ).action(async (id: string, opts: ClientOptions) => {
    process.exitCode = await tokenRevokeCommand(id, opts);
  });
  return new Command('token')
    .description(
      'worker credentials and join tokens (needs an admin API token when API_TOKENS is set)',
    )
    .addCommand(worker)
    .addCommand(join)
    .addCommand(revoke)
    .showHelpAfterError('(flota token --help lists the commands)');
}
