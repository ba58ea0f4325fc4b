import { execFile } from 'node:child_process';
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { type ManagedServer, startManagedServer } from './managed-server.ts';

export type MosquittoServer = ManagedServer;

export interface StartMosquittoOptions {
  /** Appended to the generated config (e.g. `password_file ...`, `acl_file ...`). */
  extraConfig?: string;
  /**
   * Loads the dynamic-security plugin with a fresh config whose only client
   * is this admin (as `mosquitto_ctrl dynsec init` makes it). Anonymous
   * clients may still connect; dynsec's default ACLs then let them do nothing.
   */
  dynsec?: { adminUsername: string; adminPassword: string };
}

/** Where Debian's mosquitto package installs the plugin. */
export const DYNSEC_PLUGIN = '/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so';

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
  const dynsecPath = join(dir, 'dynamic-security.json');
  try {
    if (opts.dynsec) {
      await access(DYNSEC_PLUGIN);
      // Once, not in prepare(): a restart keeps what the test provisioned.
      await promisify(execFile)('mosquitto_ctrl', [
        'dynsec',
        'init',
        dynsecPath,
        opts.dynsec.adminUsername,
        opts.dynsec.adminPassword,
      ]);
    }
    const dynsecLines = opts.dynsec
      ? [`plugin ${DYNSEC_PLUGIN}`, `plugin_opt_config_file ${dynsecPath}`]
      : [];
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
          ...dynsecLines,
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
