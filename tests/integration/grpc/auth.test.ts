/**
 * The gRPC auth interceptor on a real server (loopback): who may call what,
 * what a refused caller is told, what the operator's log says (never the
 * credential), revocation on every call and of open calls, and Enroll's rules.
 */

import { createRequire } from 'node:module';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MasterClient } from '../../../proto/src/grpc.ts';
import { MASTER_SERVICE_NAME } from '../../../proto/src/grpc.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import {
  answerTo,
  enroll,
  foreignCredentials,
  type GrpcRig,
  openStream,
  rawClient,
  reportResult,
  startGrpcRig,
  workerMetadata,
} from './support.ts';

const require = createRequire(import.meta.url);
const result = (taskId: string, workerId: string) => ({
  taskId,
  attempt: 1,
  lease: `lease-${taskId}`,
  workerId,
  text: 'answer',
});
/** The master's answer to an accepted `result(taskId, ...)`. */
const accepted = (taskId: string) => ({
  accepted: true,
  reason: '',
  taskId,
  attempt: 1,
  final: true,
});

let rig: GrpcRig;
let client: MasterClient;

beforeAll(async () => {
  rig = await startGrpcRig();
  client = rawClient(rig.address);
});
afterAll(async () => {
  client?.close();
  await rig?.close();
});

describe('gRPC authentication', () => {
  it('leaves the health service open for probes', async () => {
    const def = protoLoader.loadSync(
      require.resolve('grpc-health-check/proto/health/v1/health.proto'),
      { enums: String },
    );
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      grpc: {
        health: { v1: { Health: new (a: string, c: grpc.ChannelCredentials) => grpc.Client } };
      };
    };
    const health = new pkg.grpc.health.v1.Health(
      rig.address,
      grpc.credentials.createInsecure(),
    ) as grpc.Client & {
      Check(
        req: object,
        opts: grpc.CallOptions,
        cb: (err: Error | null, res?: { status: string }) => void,
      ): void;
    };
    const res = await new Promise<{ status: string }>((resolve, reject) =>
      health.Check({ service: MASTER_SERVICE_NAME }, { deadline: Date.now() + 5_000 }, (e, r) =>
        e ? reject(e) : resolve(r!),
      ),
    );
    health.close();
    expect(res.status).toBe('SERVING');
  });

  it('refuses calls without a valid credential of the id they name; none reaches a handler', async () => {
    const own = rig.credentials.issue('w-a');
    const other = rig.credentials.issue('w-b');
    const foreign = (await foreignCredentials()).issue('w-a');
    const join = rig.credentials.issueJoin('w-');
    const cases: Array<[string, ReturnType<typeof workerMetadata>, grpc.status, RegExp]> = [
      ['none', workerMetadata('w-a'), grpc.status.UNAUTHENTICATED, /no worker credential/],
      ['malformed', workerMetadata('w-a', 'nonsense'), grpc.status.UNAUTHENTICATED, /malformed/],
      [
        'foreign',
        workerMetadata('w-a', foreign),
        grpc.status.UNAUTHENTICATED,
        /not issued by this installation/,
      ],
      [
        'join token',
        workerMetadata('w-a', join),
        grpc.status.UNAUTHENTICATED,
        /join token only enrolls/,
      ],
      [
        "another worker's",
        workerMetadata('w-a', other),
        grpc.status.PERMISSION_DENIED,
        /another worker id/,
      ],
      [
        'no worker id',
        workerMetadata(undefined, own),
        grpc.status.INVALID_ARGUMENT,
        /x-flota-worker-id/,
      ],
    ];
    for (const [name, metadata, code, details] of cases) {
      // A result: the call is refused before it reaches the stream's handler.
      const asResult = await reportResult(client, result(`t-${name}`, 'w-a'), metadata);
      expect(asResult.error?.code, name).toBe(code);
      expect(asResult.error?.details, name).toMatch(details);
      // A chunk (no answer expected when accepted): the call ends with the same refusal.
      const stream = openStream(client, metadata, [
        { chunk: { taskId: `s-${name}`, attempt: 1, lease: 'l', seq: 0, text: 'forged' } },
      ]);
      const ended = await stream.ended;
      expect(ended.error?.code, `${name} (chunk)`).toBe(code);
      expect(stream.acks, `${name} (chunk)`).toEqual([]);
    }
    expect(rig.handled).toEqual([]);
    // The operator learns who was refused and why, never the credential presented.
    const refused = rig.logs.lines.filter((line) => line.msg === 'gRPC call refused');
    expect(refused.length).toBe(cases.length * 2);
    expect(refused[0]).toMatchObject({ level: 'warn', workerId: 'w-a', reason: 'no_credential' });
    const logged = JSON.stringify(rig.logs.lines);
    for (const secret of [own, other, foreign, join]) expect(logged).not.toContain(secret);

    const ok = await reportResult(client, result('t-own', 'w-a'), workerMetadata('w-a', own));
    expect(ok.reply).toEqual(accepted('t-own'));
    expect(rig.handled).toEqual([{ workerId: 'w-a', taskId: 't-own', kind: 'final' }]);
  });

  it('a revoked worker is refused on its next call, and its open stream is ended at once', async () => {
    const credential = rig.credentials.issue('w-rev');
    const md = () => workerMetadata('w-rev', credential);
    const open = openStream(client, md(), [
      { chunk: { taskId: 't-rev', attempt: 1, lease: 'l', seq: 0, text: 'half an answer' } },
    ]);
    await waitFor(() => rig.handled.find((h) => h.taskId === 't-rev'), { what: 'first chunk' });
    // The stream outlives an answered result: it stays open for the worker's next reports.
    const first = result('t-rev-1', 'w-rev');
    open.write([{ result: first }]);
    expect((await answerTo(open, first)).reply).toEqual(accepted('t-rev-1'));
    await rig.credentials.revoke('w-rev');
    const cut = await open.ended;
    expect(cut.error?.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(cut.error?.details).toMatch(/revoked/);
    const next = await reportResult(client, result('t-rev-2', 'w-rev'), md());
    expect(next.error?.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(next.error?.details).toMatch(/revoked/);
    expect(rig.handled.filter((h) => h.workerId === 'w-rev')).toEqual([
      { workerId: 'w-rev', taskId: 't-rev', kind: 'chunk' },
      { workerId: 'w-rev', taskId: 't-rev-1', kind: 'final' },
    ]);
    // A credential issued after the revocation works again (`flota token worker` re-admits).
    const fresh = rig.credentials.issue('w-rev');
    expect(
      (await reportResult(client, result('t-rev-3', 'w-rev'), workerMetadata('w-rev', fresh)))
        .reply,
    ).toEqual(accepted('t-rev-3'));
  });
});

describe('Enroll', () => {
  it('trades a join token for a credential of an id under its prefix', async () => {
    const join = rig.credentials.issueJoin('swarm-');
    const { reply, error } = await enroll(client, 'swarm-7', join);
    expect(error).toBeUndefined();
    expect(rig.credentials.check(reply?.credential, 'swarm-7')).toEqual({
      ok: true,
      workerId: 'swarm-7',
    });
    expect(
      rig.logs.lines.some((l) => l.msg === 'worker enrolled' && l.workerId === 'swarm-7'),
    ).toBe(true);
  });

  it('refuses an id outside the prefix, an id online, a bad token, a worker credential', async () => {
    const join = rig.credentials.issueJoin('swarm-');
    const outside = await enroll(client, 'gpu-1', join);
    expect(outside.error?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(outside.error?.details).toMatch(/starting with "swarm-", not "gpu-1"/);

    rig.online.add('swarm-1');
    const taken = await enroll(client, 'swarm-1', join);
    expect(taken.error?.code).toBe(grpc.status.ALREADY_EXISTS);
    expect(taken.error?.details).toMatch(/is online/);

    const none = await enroll(client, 'swarm-2');
    expect(none.error?.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(none.error?.details).toMatch(/join token/);
    const foreign = await enroll(
      client,
      'swarm-2',
      (await foreignCredentials()).issueJoin('swarm-'),
    );
    expect(foreign.error?.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(foreign.error?.details).toMatch(/not issued by this installation/);
    const credential = await enroll(client, 'swarm-2', rig.credentials.issue('swarm-2'));
    expect(credential.error?.code).toBe(grpc.status.UNAUTHENTICATED);

    const badId = await enroll(client, 'swarm-bad id/#', join);
    expect(badId.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it('an empty prefix admits any id', async () => {
    const { reply } = await enroll(client, 'anything-1', rig.credentials.issueJoin(''));
    expect(rig.credentials.check(reply?.credential, 'anything-1').ok).toBe(true);
  });
});
