/**
 * TLS material from TLS_CERT / TLS_KEY / TLS_CA, shared by the HTTPS server,
 * the gRPC server and the embedded broker's mqtts listener.
 */
export interface TlsMaterial {
  /** PEM certificate chain the master presents. */
  cert: string;
  /** PEM private key of `cert`. */
  key: string;
  /** PEM CA bundle that signs client (worker) certificates. */
  ca?: string;
  /** Mutual TLS: refuse clients without a certificate signed by `ca`. */
  requireClientCert: boolean;
}
