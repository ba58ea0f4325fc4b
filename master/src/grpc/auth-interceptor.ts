/**
 * Authentication for the Master service, in one server interceptor so no
 * handler repeats it. Connect needs the caller's own worker credential
 * (`authorization: Bearer fwt1...`) and `x-flota-worker-id` naming the same
 * worker; Enroll needs a join token (`Bearer fjt1...`). Health and reflection stay open for probes and grpcurl.
 *
 * The check runs on every call, against the live revocation list, and a
 * revocation also ends the revoked worker's calls still open (its report
 * stream), so a revoked worker is cut off at once.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../../common/logger.ts';
import {
  type MasterDefinition,
  METADATA_AUTHORIZATION,
  METADATA_WORKER_ID,
  parseBearer,
} from '../../../proto/src/grpc.ts';
import { REFUSAL_TEXT, type WorkerCredentials } from '../security/worker-credentials.ts';

export interface AuthInterceptorOptions {
  credentials: WorkerCredentials;
  /** The Master service definition: its method paths are the ones guarded. */
  service: MasterDefinition;
  log: Logger;
  /** Hears of every refused call (the audit trail); never given the credential. */
  onRefused?: (refused: GrpcRefusal) => void;
}

/** A refused call as the audit trail records it. */
export interface GrpcRefusal {
  method: string;
  /** The worker id the caller claimed, if any. */
  workerId?: string;
  /** The caller's address, without its port. */
  from?: string;
  reason: string;
}

/** `ipv4:10.0.0.5:51234` or `[::1]:51234` → the address alone (one source per host, not per connection). */
export function peerAddress(peer: string): string | undefined {
  const match = /^(?:ipv[46]:)?\[?([^\]]*?)\]?:\d+$/.exec(peer);
  return match?.[1] || undefined;
}

export interface AuthInterceptor {
  readonly interceptor: grpc.ServerInterceptor;
  /** Stops listening for revocations (the server is closing). */
  close(): void;
}

interface Refusal {
  code: grpc.status;
  /** Sent to the caller: says what to fix, never quotes what was presented. */
  details: string;
  /** Logged: a short machine-readable why. */
  reason: string;
}

const NO_CREDENTIAL: Refusal = {
  code: grpc.status.UNAUTHENTICATED,
  details: `no worker credential: send metadata ${METADATA_AUTHORIZATION}: Bearer <credential> (flota token worker <id> prints one)`,
  reason: 'no_credential',
};

const NO_JOIN_TOKEN: Refusal = {
  code: grpc.status.UNAUTHENTICATED,
  details: `Enroll needs a join token: send metadata ${METADATA_AUTHORIZATION}: Bearer <join token> (fjt1...)`,
  reason: 'no_join_token',
};

/** The bearer credential of a call, or undefined. */
export function bearerOf(metadata: grpc.Metadata): string | undefined {
  return parseBearer(metadata.get(METADATA_AUTHORIZATION)[0]);
}

/** The caller's worker id; the interceptor has checked it against the credential. */
export function verifiedWorkerId(metadata: grpc.Metadata): string {
  return String(metadata.get(METADATA_WORKER_ID)[0] ?? '');
}

export function createAuthInterceptor(options: AuthInterceptorOptions): AuthInterceptor {
  const { credentials, service } = options;
  const log = options.log.child({ component: 'grpc-auth' });
  const enrollPath = service.Enroll.path;
  const workerPaths = new Set(
    Object.values(service)
      .map((method) => method.path)
      .filter((path) => path !== enrollPath),
  );
  /** Worker id → its calls still open, ended when that worker is revoked. */
  const open = new Map<string, Set<grpc.ServerInterceptingCallInterface>>();

  const admitWorker = (metadata: grpc.Metadata): { workerId: string } | Refusal => {
    const token = bearerOf(metadata);
    if (token === undefined) return NO_CREDENTIAL;
    const workerId = verifiedWorkerId(metadata);
    if (!workerId) {
      return {
        code: grpc.status.INVALID_ARGUMENT,
        details: `metadata ${METADATA_WORKER_ID} is required (the id the credential was issued for)`,
        reason: 'no_worker_id',
      };
    }
    const check = credentials.check(token, workerId);
    if (check.ok) return { workerId };
    if (check.reason === 'wrong_worker') {
      return {
        code: grpc.status.PERMISSION_DENIED,
        details: `${REFUSAL_TEXT.wrong_worker}: a worker may only act as itself`,
        reason: check.reason,
      };
    }
    const joinToken = check.reason === 'malformed' && credentials.checkJoin(token).ok;
    return {
      code: grpc.status.UNAUTHENTICATED,
      details: joinToken
        ? 'a join token only enrolls: call Enroll with it, then use the worker credential it returns'
        : REFUSAL_TEXT[check.reason],
      reason: check.reason,
    };
  };

  const admitJoin = (metadata: grpc.Metadata): Refusal | undefined => {
    const token = bearerOf(metadata);
    if (token === undefined) return NO_JOIN_TOKEN;
    const check = credentials.checkJoin(token);
    if (check.ok) return undefined;
    return {
      code: grpc.status.UNAUTHENTICATED,
      details:
        check.reason === 'bad_signature'
          ? 'the join token was not issued by this installation'
          : 'the join token is malformed (expected fjt1.<id prefix>.<issued>.<signature>)',
      reason: `join_${check.reason}`,
    };
  };

  const track = (workerId: string, call: grpc.ServerInterceptingCallInterface) => {
    const calls = open.get(workerId) ?? new Set<grpc.ServerInterceptingCallInterface>();
    open.set(workerId, calls);
    calls.add(call);
    return () => {
      calls.delete(call);
      if (calls.size === 0 && open.get(workerId) === calls) open.delete(workerId);
    };
  };

  const onRevoked = (workerId: string) => {
    const calls = open.get(workerId);
    open.delete(workerId);
    if (!calls?.size) return;
    log.warn({ workerId, calls: calls.size }, 'worker revoked: its open gRPC calls are ended');
    for (const call of calls) {
      call.sendStatus({ code: grpc.status.UNAUTHENTICATED, details: REFUSAL_TEXT.revoked });
    }
  };
  credentials.on('revoked', onRevoked);

  const interceptor: grpc.ServerInterceptor = (method, call) => {
    const path = method.path;
    const isEnroll = path === enrollPath;
    // Health, reflection: open, so probes and grpcurl work without a credential.
    if (!isEnroll && !workerPaths.has(path)) return new grpc.ServerInterceptingCall(call);
    let untrack: (() => void) | undefined;
    const release = () => {
      untrack?.();
      untrack = undefined;
    };
    const refuse = (refusal: Refusal, metadata: grpc.Metadata) => {
      // The claimed id helps an operator find the misconfigured worker; the credential is never logged.
      const workerId = String(metadata.get(METADATA_WORKER_ID)[0] ?? '').slice(0, 128) || undefined;
      const peer = call.getPeer();
      log.warn({ method: path, workerId, peer, reason: refusal.reason }, 'gRPC call refused');
      options.onRefused?.({
        method: path,
        workerId,
        from: peerAddress(peer),
        reason: refusal.reason,
      });
      call.sendStatus({ code: refusal.code, details: refusal.details });
    };
    return new grpc.ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMetadata(metadata, admit) {
            if (isEnroll) {
              const refusal = admitJoin(metadata);
              if (refusal) return refuse(refusal, metadata);
              return admit(metadata);
            }
            const verdict = admitWorker(metadata);
            if ('code' in verdict) return refuse(verdict, metadata);
            untrack = track(verdict.workerId, call);
            // Messages of a refused call never reach the handler: without admit() they stay held.
            admit(metadata);
          },
          onCancel: release,
        });
      },
      sendStatus(status, next) {
        release();
        next(status);
      },
    });
  };

  return {
    interceptor,
    close() {
      credentials.off('revoked', onRevoked);
      open.clear();
    },
  };
}
