/**
 * The ports a master would bind (PORT, GRPC_PORT and, for the embedded
 * broker, MQTT_PORT): free on HOST, or taken — by the running flota master
 * (expected) or by something else, which is then named when it can be.
 */
import { createServer } from 'node:net';
import { hostPort } from './address.ts';
import { type CheckResult, fail, pass } from './result.ts';

export type PortName = 'PORT' | 'GRPC_PORT' | 'MQTT_PORT';

/** What binding the port on HOST showed: free, taken, or another error code (EACCES, …). */
export type BindOutcome = { state: 'free' } | { state: 'taken' } | { state: 'error'; code: string };

/** Binds `host:port` for an instant, as the master would, and lets it go. */
export function tryBind(host: string, port: number): Promise<BindOutcome> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => {
      resolve(
        err.code === 'EADDRINUSE'
          ? { state: 'taken' }
          : { state: 'error', code: err.code ?? 'error' },
      );
    });
    server.listen({ host, port, exclusive: true }, () => {
      server.close(() => resolve({ state: 'free' }));
    });
  });
}

export interface PortFacts {
  name: PortName;
  host: string;
  port: number;
  bind: BindOutcome;
  /** A flota master answers on PORT: its ports are expected to be taken. */
  masterRunning: boolean;
  /** MQTT_PORT only: an MQTT broker answered a CONNECT there. */
  mqttBroker?: boolean;
  /** A free port to suggest instead. */
  nextFree: number;
}

const MOVE_HINT: Record<PortName, string> = {
  PORT: 'the HTTP server',
  GRPC_PORT: 'the gRPC server',
  MQTT_PORT: 'the embedded broker',
};

export function portVerdict(facts: PortFacts): CheckResult {
  const { name, host, port, bind } = facts;
  const check = `port:${name}`;
  const where = `${name} ${port}`;
  if (port === 0) return pass(check, `${name} 0: a free port is picked at start`);
  if (bind.state === 'free') return pass(check, `${where} free on ${host}`);
  if (bind.state === 'error') {
    if (bind.code === 'EACCES') {
      return fail(
        check,
        `${where} cannot be opened on ${host}`,
        'ports below 1024 need root (EACCES)',
        `Set ${name} to a port from 1024 up`,
      );
    }
    if (bind.code === 'EADDRNOTAVAIL') {
      return fail(
        check,
        `${where} cannot be opened on ${host}`,
        `${host} is not an address of this machine (EADDRNOTAVAIL)`,
        'Set HOST to one of its addresses, 0.0.0.0 for all of them, or 127.0.0.1',
      );
    }
    return fail(
      check,
      `${where} cannot be opened on ${host}`,
      bind.code,
      `Set ${name} to another port, e.g. ${name}=${facts.nextFree}`,
    );
  }
  if (facts.masterRunning) return pass(check, `${where} in use by the running flota master`);
  if (name === 'MQTT_PORT' && facts.mqttBroker) {
    return fail(
      check,
      `${where} is taken on ${host}`,
      `an MQTT broker answers on ${port}`,
      `Set MQTT_PORT=${facts.nextFree} to move the embedded broker, or MQTT_URL=mqtt://${hostPort(host, port)} to use it`,
    );
  }
  return fail(
    check,
    `${where} is taken on ${host}`,
    'another program listens there (no flota master answers on PORT)',
    `Set ${name}=${facts.nextFree} to move ${MOVE_HINT[name]}, or stop that program (\`ss -ltnp 'sport = :${port}'\` names it)`,
  );
}

/** Two of the master's listeners on one port can never both start. */
export function samePortVerdict(ports: Partial<Record<PortName, number>>): CheckResult | undefined {
  const seen = new Map<number, PortName>();
  for (const [name, port] of Object.entries(ports) as [PortName, number][]) {
    if (port === 0) continue;
    const other = seen.get(port);
    if (other) {
      return fail(
        'ports',
        `${other} and ${name} are both ${port}`,
        'two listeners cannot share a port',
        `Give ${name} another value`,
      );
    }
    seen.set(port, name);
  }
  return undefined;
}
