/**
 * The worker's gRPC channel: TLS (trusting TLS_CA, or the system's roots when
 * it is unset; presenting TLS_CERT/TLS_KEY for mutual TLS) when GRPC_TLS is
 * on, plaintext otherwise. The bearer credential travels as call metadata,
 * the same on both, so one code path serves loopback and remote workers.
 */
import * as grpc from '@grpc/grpc-js';
import type { WorkerConfig } from './config.ts';

export type GrpcTlsConfig = Pick<WorkerConfig, 'grpcTls' | 'tlsCa' | 'tlsCert' | 'tlsKey'>;

export function grpcChannelCredentials(config: GrpcTlsConfig): grpc.ChannelCredentials {
  if (!config.grpcTls) return grpc.credentials.createInsecure();
  const pem = (text: string | undefined) => (text === undefined ? null : Buffer.from(text));
  return grpc.credentials.createSsl(pem(config.tlsCa), pem(config.tlsKey), pem(config.tlsCert));
}
