/**
 * The gRPC callback server workers stream results to, with the standard
 * health service and server reflection (so `grpcurl` and probes work).
 * Who may call what is decided once, in the auth interceptor; with TLS
 * material it listens with TLS (and mutual TLS when client certificates are
 * required).
 */
import { format } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import type { Logger } from '../../../common/logger.ts';
import { formatZodError } from '../../../common/zod-error.ts';
import {
  loadMasterPackage,
  MASTER_SERVICE_NAME,
  type MasterHandlers,
  PROTO_LOADER_OPTIONS,
  type TaskAck,
  type TaskChunk__Output,
} from '../../../proto/src/grpc.ts';
import {
  taskChunkMessageSchema,
  taskResultMessageSchema,
} from '../../../proto/src/schemas/grpc.ts';
import { listenError } from '../listen.ts';
import type { ResultHandler, Verdict } from '../results/result-handler.ts';
import type { TlsMaterial } from '../security/tls.ts';
import type { WorkerCredentials } from '../security/worker-credentials.ts';
import { createAuthInterceptor, verifiedWorkerId } from './auth-interceptor.ts';
import { createEnrollHandler, type Enrollment } from './enroll.ts';

export interface GrpcServerOptions {
  host: string;
  port: number;
  results: ResultHandler;
  log: Logger;
  /** Checks every worker credential and join token presented. */
  credentials: WorkerCredentials;
  /** TLS on the listener; without it the server speaks plaintext (loopback, or a private network). */
  tls?: TlsMaterial;
  enroll: Enrollment;
}

export interface MasterGrpcServer {
  readonly port: number;
  /** True from bind until close() starts. */
  serving(): boolean;
  close(): Promise<void>;
}

interface AttemptKey {
  taskId: string;
  attempt: number;
  lease: string;
}
const attemptKey = (m: AttemptKey): AttemptKey => ({
  taskId: m.taskId,
  attempt: m.attempt,
  lease: m.lease,
});
const sameAttempt = (a: AttemptKey, b: AttemptKey) =>
  a.taskId === b.taskId && a.attempt === b.attempt && a.lease === b.lease;

const toAck = (verdict: Verdict): TaskAck =>
  verdict.accepted ? { accepted: true, reason: '' } : { accepted: false, reason: verdict.reason };

function serverCredentials(tls: TlsMaterial | undefined): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  return grpc.ServerCredentials.createSsl(
    tls.ca ? Buffer.from(tls.ca) : null,
    [{ cert_chain: Buffer.from(tls.cert), private_key: Buffer.from(tls.key) }],
    tls.requireClientCert,
  );
}

/**
 * grpc-js writes its own errors to stderr ("E No address added out of total 1
 * resolved" on a taken port); each also reaches us as an error we explain, so
 * its lines go to our log at debug level instead. Process-wide, as grpc-js's
 * logger is.
 */
function routeGrpcLogs(log: Logger): void {
  const line = (...args: unknown[]) => log.debug({ grpcJs: format(...args) }, 'grpc-js log');
  grpc.setLogger({ error: line, info: line, debug: line });
}

export async function startGrpcServer(options: GrpcServerOptions): Promise<MasterGrpcServer> {
  const log = options.log.child({ component: 'grpc' });
  routeGrpcLogs(log);
  const { proto, definition } = loadMasterPackage();
  const auth = createAuthInterceptor({
    credentials: options.credentials,
    service: proto.flota.v1.Master.service,
    log,
  });
  const server = new grpc.Server({
    'grpc.max_receive_message_length': 8 * 1024 * 1024,
    interceptors: [auth.interceptor],
  });

  const handlers: MasterHandlers = {
    ReportResult(call, callback) {
      const workerId = verifiedWorkerId(call.metadata);
      const parsed = taskResultMessageSchema.safeParse(call.request);
      if (!parsed.success) {
        log.warn({ workerId, reason: formatZodError(parsed.error) }, 'result dropped: invalid');
        return callback(null, {
          accepted: false,
          reason: `bad_request: ${formatZodError(parsed.error)}`,
        });
      }
      options.results.final(workerId, call.request).then(
        (verdict) => callback(null, toAck(verdict)),
        (err) => {
          log.error({ err, workerId }, 'result handling failed');
          callback(null, { accepted: false, reason: 'internal' });
        },
      );
    },

    StreamTask(call, callback) {
      const workerId = verifiedWorkerId(call.metadata);
      let answered = false;
      let attempt: AttemptKey | undefined;
      let finalVerdict: Promise<Verdict> | undefined;
      const answer = (ack: TaskAck) => {
        if (answered) return;
        answered = true;
        callback(null, ack);
      };
      /** Answers `bad_request` and logs why; the caller reads the same reason in its ack. */
      const refuse = (why: string) => {
        log.warn({ workerId, ...attempt, reason: why }, 'result stream refused');
        answer({ accepted: false, reason: `bad_request: ${why}` });
      };
      const takeFinal = (chunk: TaskChunk__Output) => {
        if (!chunk.final || answered) return;
        const final = taskResultMessageSchema.safeParse(chunk.final);
        if (!final.success) return refuse(`final: ${formatZodError(final.error)}`);
        if (!sameAttempt(attempt as AttemptKey, attemptKey(final.data))) {
          return refuse('final result names another task attempt than its stream');
        }
        finalVerdict = options.results.final(workerId, chunk.final);
      };
      /** Handles one message; a promise while the master adopts an attempt it did not know. */
      const onChunk = (chunk: TaskChunk__Output): Promise<void> | undefined => {
        if (answered) return;
        const parsed = taskChunkMessageSchema.safeParse(chunk);
        if (!parsed.success) return void refuse(formatZodError(parsed.error));
        const key = attemptKey(parsed.data);
        attempt ??= key;
        if (!sameAttempt(attempt, key)) return void refuse('a stream carries one task attempt');
        if (finalVerdict) {
          // The final is in (and answers the stream); anything after it is noise.
          log.warn({ workerId, ...attempt, seq: parsed.data.seq }, 'chunk after the final ignored');
          return;
        }
        if (!chunk.text) return void takeFinal(chunk);
        const verdict = options.results.chunk(workerId, chunk);
        const next = (v: Verdict) => (v.accepted ? takeFinal(chunk) : answer(toAck(v)));
        if (!(verdict instanceof Promise)) return void next(verdict);
        return verdict.then(next);
      };
      /** Messages wait behind an adoption in progress, so their order is kept. */
      let backlog: Promise<void> | undefined;
      const guarded = (chunk: TaskChunk__Output) => {
        try {
          return onChunk(chunk)?.catch((err) => fail(err));
        } catch (err) {
          fail(err);
        }
      };
      const fail = (err: unknown) => {
        // A bug on one stream must not take the master down: fail that stream only.
        log.error({ err, workerId, ...attempt }, 'chunk handling failed');
        answer({ accepted: false, reason: 'internal' });
      };
      call.on('data', (chunk: TaskChunk__Output) => {
        if (answered) return;
        const pending = backlog ? backlog.then(() => guarded(chunk)) : guarded(chunk);
        if (!pending) return;
        backlog = pending;
        void pending.then(() => {
          if (backlog === pending) backlog = undefined;
        });
      });
      call.on('end', () => {
        const finish = () => {
          if (answered) return;
          if (!finalVerdict) {
            log.warn({ workerId, ...attempt }, 'result stream ended without a final result');
            return answer({ accepted: false, reason: 'no_final' });
          }
          finalVerdict.then(
            (verdict) => answer(toAck(verdict)),
            (err) => {
              log.error({ err, workerId }, 'result handling failed');
              answer({ accepted: false, reason: 'internal' });
            },
          );
        };
        if (backlog) void backlog.then(finish);
        else finish();
      });
      call.on('cancelled', () => {
        // grpc-js also reports a finished stream as cancelled once its answer went out.
        if (answered && finalVerdict) return;
        // Whatever arrived stays (chunks shown, a final committed); the worker resends the rest.
        log.warn({ workerId, ...attempt, final: finalVerdict !== undefined }, 'result stream cut');
        answered = true;
      });
      call.on('error', (err) => log.warn({ workerId, err: err.message }, 'result stream broke'));
    },

    Enroll: createEnrollHandler({
      credentials: options.credentials,
      enroll: options.enroll,
      log,
    }),
  };

  server.addService(proto.flota.v1.Master.service, handlers);
  const health = new HealthImplementation({ '': 'SERVING', [MASTER_SERVICE_NAME]: 'SERVING' });
  health.addToServer(server);
  // Reflection describes both services, so `grpcurl list` shows health too.
  const healthDefinition = protoLoader.loadSync(healthProtoPath, PROTO_LOADER_OPTIONS);
  new ReflectionService({ ...definition, ...healthDefinition }).addToServer(server);

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(
      `${options.host}:${options.port}`,
      serverCredentials(options.tls),
      (err, bound) => (err ? reject(err) : resolve(bound)),
    );
  }).catch(async (err: unknown) => {
    auth.close();
    server.forceShutdown();
    throw await listenError(
      { name: 'gRPC', variable: 'GRPC_PORT', host: options.host, port: options.port },
      err,
    );
  });
  log.info(
    { port, tls: options.tls !== undefined, clientCerts: options.tls?.requireClientCert ?? false },
    'gRPC server listening',
  );

  let closing: Promise<void> | undefined;
  return {
    port,
    serving: () => closing === undefined,
    close() {
      closing ??= new Promise<void>((resolve) => {
        health.setStatus('', 'NOT_SERVING');
        auth.close();
        const force = setTimeout(() => server.forceShutdown(), 2_000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      return closing;
    },
  };
}
