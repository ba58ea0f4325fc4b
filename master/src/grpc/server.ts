/**
 * The gRPC callback server workers stream results to (one Connect stream per
 * worker, report-stream.ts), with the standard
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
import {
  loadMasterPackage,
  MASTER_SERVICE_NAME,
  type MasterHandlers,
  PROTO_LOADER_OPTIONS,
} from '../../../proto/src/grpc.ts';
import { listenError } from '../listen.ts';
import type { ResultHandler } from '../results/result-handler.ts';
import type { TlsMaterial } from '../security/tls.ts';
import type { WorkerCredentials } from '../security/worker-credentials.ts';
import { createAuthInterceptor, type GrpcRefusal, verifiedWorkerId } from './auth-interceptor.ts';
import { createEnrollHandler, type Enrollment } from './enroll.ts';
import { type ReportStream, serveReportStream } from './report-stream.ts';

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
  /** Hears of every call refused for its credential (the audit trail). */
  onRefused?: (refused: GrpcRefusal) => void;
}

export interface MasterGrpcServer {
  readonly port: number;
  /** True from bind until close() starts. */
  serving(): boolean;
  close(): Promise<void>;
}

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
    onRefused: options.onRefused,
  });
  const server = new grpc.Server({
    'grpc.max_receive_message_length': 8 * 1024 * 1024,
    interceptors: [auth.interceptor],
  });

  /** Open report streams, ended first when the server closes (they never end by themselves). */
  const streams = new Set<ReportStream>();
  const handlers: MasterHandlers = {
    Connect(call) {
      const stream = serveReportStream(call, {
        workerId: verifiedWorkerId(call.metadata),
        results: options.results,
        log,
      });
      streams.add(stream);
      void stream.done.then(() => streams.delete(stream));
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
        for (const stream of streams) stream.end();
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
