/**
 * Opening the master's listeners (HTTP, embedded MQTT; gRPC binds its own)
 * and, when one cannot open its port, saying why in words a person can act
 * on: which port, what already answers there, and which variable moves it.
 */
import type { Server } from 'node:net';
import { StartupError } from '../../common/errors.ts';
import { type Listener, nearbyFreePort, probePort } from '../../common/port-probe.ts';

export interface ListenerSpec {
  /** `HTTP`, `gRPC`, `MQTT`: what the port is for. */
  name: string;
  /** The variable that sets the port: PORT, GRPC_PORT, MQTT_PORT. */
  variable: string;
  host: string;
  port: number;
}

const ANSWERS: Record<Listener, string> = {
  mqtt: 'an MQTT broker answers there',
  flota: 'another flota master answers there',
  http: 'an HTTP server answers there',
  http2: 'an HTTP/2 server (gRPC, perhaps another flota master) answers there',
  tls: 'a TLS server answers there',
  other: 'another program holds it',
  unknown: 'another program holds it',
};

/**
 * Resolves once `server` listens; rejects with the listen error itself
 * (`events.once(server, 'listening')` would reject with it too, racing any
 * handler that explains it).
 */
export function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

/** The errno-style code of a listen/bind failure; gRPC only puts it in its message. */
export function listenErrorCode(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string') return code;
  const message = err instanceof Error ? err.message : String(err);
  return /\b(EADDRINUSE|EACCES|EADDRNOTAVAIL|ENOTFOUND|EAI_AGAIN)\b/.exec(message)?.[1];
}

const HOST_HINT =
  'Set HOST to an address of this machine: 127.0.0.1 (this machine only) or 0.0.0.0 (every interface).';

/** The StartupError for a listener that failed to open; probes the port when it is taken. */
export async function listenError(spec: ListenerSpec, err: unknown): Promise<StartupError> {
  const { name, variable, host, port } = spec;
  const code = listenErrorCode(err);
  switch (code) {
    case 'EADDRINUSE':
      return portInUse(spec, await probePort(host, port), err);
    case 'EACCES':
      return new StartupError(
        'port_forbidden',
        `${name} port ${port} needs privileges this user does not have (ports below 1024 do)`,
        { hint: `Set ${variable} to a port above 1023.`, cause: err },
      );
    case 'EADDRNOTAVAIL':
      return new StartupError(
        'host_unavailable',
        `HOST=${host} is not an address of this machine`,
        {
          hint: HOST_HINT,
          cause: err,
        },
      );
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new StartupError('host_unavailable', `HOST=${host} does not resolve to an address`, {
        hint: HOST_HINT,
        cause: err,
      });
    default:
      return new StartupError(
        'listen_failed',
        `${name} port ${port} cannot be opened on ${host}: ${(err as Error).message}`,
        { hint: `Set ${variable} to another port.`, cause: err },
      );
  }
}

async function portInUse(spec: ListenerSpec, what: Listener, err: unknown): Promise<StartupError> {
  const { name, variable, host, port } = spec;
  const free = await nearbyFreePort(host, port);
  const move = `${variable}=${free ?? 'another port'}`;
  let hint: string;
  if (variable === 'MQTT_PORT' && what === 'mqtt') {
    hint = `Set ${move} to move the embedded broker, or MQTT_URL=mqtt://127.0.0.1:${port} to use that broker.`;
  } else if (what === 'flota' || (what === 'http2' && variable === 'GRPC_PORT')) {
    hint = `Stop that one first, or set ${move} (and the other ports) to run a second one.`;
  } else {
    hint = `Set ${move}, or stop what holds ${port}.`;
  }
  return new StartupError('port_in_use', `${name} port ${port} is in use: ${ANSWERS[what]}`, {
    hint,
    cause: err,
  });
}
