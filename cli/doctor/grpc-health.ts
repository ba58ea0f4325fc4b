/**
 * The running master's gRPC port: the standard health service
 * (grpc.health.v1, registered by the master) must answer SERVING for the
 * flota.v1.Master service, which also tells a flota master from any other
 * gRPC server on GRPC_PORT.
 */
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { MASTER_SERVICE_NAME } from '../../proto/src/grpc.ts';
import { type CheckResult, fail, PROBE_TIMEOUT_MS, pass } from './result.ts';

export interface GrpcTarget {
  /** `host:port` */
  address: string;
  /** Over TLS: the CA to trust, and the client certificate when the master asks for one. */
  tls?: { ca?: string; cert?: string; key?: string };
}

export type GrpcProbe = { ok: true; status: string } | { ok: false; reason: string };

const HealthClient = grpc.makeGenericClientConstructor(healthService, 'Health');

function credentialsOf(tls: GrpcTarget['tls']): grpc.ChannelCredentials {
  if (!tls) return grpc.credentials.createInsecure();
  const pem = (text?: string) => (text ? Buffer.from(text) : null);
  return grpc.credentials.createSsl(pem(tls.ca), pem(tls.key), pem(tls.cert));
}

export function probeGrpcHealth(target: GrpcTarget): Promise<GrpcProbe> {
  const client = new HealthClient(target.address, credentialsOf(target.tls));
  const check = client.Check as unknown as (
    request: { service: string },
    options: grpc.CallOptions,
    callback: (err: grpc.ServiceError | null, reply?: { status?: string }) => void,
  ) => void;
  return new Promise<GrpcProbe>((resolve) => {
    check.call(
      client,
      { service: MASTER_SERVICE_NAME },
      { deadline: Date.now() + PROBE_TIMEOUT_MS },
      (err, reply) => {
        if (err) return resolve({ ok: false, reason: err.details || err.message });
        return resolve({ ok: true, status: reply?.status ?? 'UNKNOWN' });
      },
    );
  }).finally(() => client.close());
}

export function grpcVerdict(address: string, probe: GrpcProbe): CheckResult {
  if (probe.ok && probe.status === 'SERVING') {
    return pass('grpc', `gRPC on ${address} SERVING`);
  }
  return fail(
    'grpc',
    `gRPC on ${address} not serving`,
    probe.ok ? `its health service says ${probe.status}` : probe.reason,
    'Set GRPC_PORT to the running master’s (its start-up log says "gRPC server listening"): workers send results there',
  );
}
