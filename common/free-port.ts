import { createServer } from 'node:net';

/**
 * A TCP port on 127.0.0.1 that the OS reported free a moment ago (it picks
 * one for port 0; we release it at once). Another process could take it in
 * between, so callers that bind it should be ready to retry.
 */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close((err) =>
        err || port === 0 ? reject(err ?? new Error('no port')) : resolve(port),
      );
    });
  });
}
