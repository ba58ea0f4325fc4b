import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { type ManagedServer, startManagedServer } from './managed-server.ts';

export type MosquittoServer = ManagedServer;

export interface StartMosquittoOptions {
  /** Appended to the generated config (e.g. `password_file ...`, `acl_file ...`). */
  extraConfig?: string;
}

/**
 * Resolves true once the broker on `port` answers an MQTT CONNECT, even with a
 * refusal (an auth-only config refuses the anonymous probe, yet is up).
 */
async function acceptsMqtt(port: number): Promise<boolean> {
  const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, {
    reconnectPeriod: 0,
    connectTimeout: 1_000,
  });
  try {
    return await new Promise<boolean>((resolve) => {
      client.once('connect', () => resolve(true));
      // A CONNACK refusal carries a numeric return code; socket errors carry a string.
      client.once('error', (err) => resolve(typeof (err as { code?: unknown }).code === 'number'));
      client.once('close', () => resolve(false));
    });
  } finally {
    client.end(true);
  }
}

/**
 * Spawns `mosquitto -c <temp config>` listening on a free 127.0.0.1 port
 * (anonymous access, TCP_NODELAY, no persistence, `user root` because as root
 * Mosquitto otherwise exits silently) and resolves once it accepts an MQTT
 * connection (a CONNACK refusal also counts, so `extraConfig` may turn on auth).
 */
export async function startMosquitto(opts: StartMosquittoOptions = {}): Promise<MosquittoServer> {
  const dir = await mkdtemp(join(tmpdir(), 'flota-mosquitto-'));
  const configPath = join(dir, 'mosquitto.conf');
  try {
    return await startManagedServer({
      what: 'mosquitto',
      command: 'mosquitto',
      prepare: async (port) => {
        const lines = [
          `listener ${port} 127.0.0.1`,
          'allow_anonymous true',
          'set_tcp_nodelay true',
          'persistence false',
          'user root',
          'log_dest stderr',
          opts.extraConfig ?? '',
        ];
        await writeFile(configPath, `${lines.join('\n')}\n`);
        return ['-c', configPath];
      },
      ready: acceptsMqtt,
      url: (port) => `mqtt://127.0.0.1:${port}`,
      dispose: () => rm(dir, { recursive: true, force: true }),
    });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
