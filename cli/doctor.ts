/**
 * `flota doctor`: reads the environment `flota up` and `flota master` would
 * read and checks what a start needs, or what a running installation needs
 * to work — Node, configuration, ports, data dir, store, broker, gRPC,
 * workers online, clock, and the security settings for HOST. One line per
 * check, `✓ what` or `✗ what — why. fix`; exit code 0 when all pass, 1
 * otherwise; `--json` for scripts. Every probe is bounded (2 s) and dials
 * only this machine or the configured store and broker.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { nearbyFreePort, probePort } from '../common/port-probe.ts';
import { apiTokensOf, type MasterConfig } from '../master/src/config.ts';
import { GENERATED_TOKENS_FILE } from '../master/src/security/exposure.ts';
import { hostPort } from './doctor/address.ts';
import { brokerVerdict } from './doctor/broker.ts';
import { type ClockSample, clockVerdict } from './doctor/clock.ts';
import { checkConfig } from './doctor/config.ts';
import { checkDataDirWritable, permissionsVerdict, secretFileModes } from './doctor/data-dir.ts';
import {
  type MasterTarget,
  masterVerdict,
  probeMaster,
  probeWorkers,
  workersVerdict,
} from './doctor/master-probe.ts';
import { checkNodeVersion, requiredNodeRange } from './doctor/node-version.ts';
import { type PortName, portVerdict, samePortVerdict, tryBind } from './doctor/ports.ts';
import { type CheckResult, formatResult } from './doctor/result.ts';
import { exposureVerdicts, tlsVerdict } from './doctor/security.ts';
import { tokenOption } from './master-api.ts';

export interface DoctorOptions {
  json: boolean;
  /** API token for GET /api/workers (--token / FLOTA_TOKEN). */
  token?: string;
}

/** The admin token a network-facing master generated on an earlier start, if any. */
async function generatedToken(dataDir: string): Promise<string | undefined> {
  const text = await readFile(join(resolve(dataDir), GENERATED_TOKENS_FILE), 'utf8').catch(
    () => '',
  );
  return text.trim() || undefined;
}

async function checkPort(
  name: PortName,
  host: string,
  port: number,
  masterRunning: boolean,
): Promise<CheckResult> {
  const bind = port === 0 ? ({ state: 'free' } as const) : await tryBind(host, port);
  const foreign = bind.state === 'taken' && !masterRunning;
  // The same probe the master's start-up error uses, so both name the same culprit.
  const mqttBroker =
    foreign && name === 'MQTT_PORT' ? (await probePort(host, port)) === 'mqtt' : undefined;
  const nextFree = bind.state === 'free' ? port : ((await nearbyFreePort(host, port)) ?? port + 1);
  return portVerdict({ name, host, port, bind, masterRunning, mqttBroker, nextFree });
}

async function checkPorts(config: MasterConfig, masterRunning: boolean): Promise<CheckResult[]> {
  const ports: Partial<Record<PortName, number>> = {
    PORT: config.PORT,
    GRPC_PORT: config.GRPC_PORT,
  };
  // With MQTT_URL the master runs no broker of its own.
  if (!config.MQTT_URL) ports.MQTT_PORT = config.MQTT_PORT;
  const clash = samePortVerdict(ports);
  if (clash) return [clash];
  const entries = Object.entries(ports) as [PortName, number][];
  return Promise.all(
    entries.map(([name, port]) => checkPort(name, config.HOST, port, masterRunning)),
  );
}

async function checkDataDir(dataDir: string): Promise<CheckResult[]> {
  const writable = await checkDataDirWritable(dataDir);
  const permissions = permissionsVerdict(await secretFileModes(dataDir));
  return permissions ? [writable, permissions] : [writable];
}

/** Every check after the configuration, which they all read. */
async function checkInstallation(
  config: MasterConfig,
  options: DoctorOptions,
): Promise<CheckResult[]> {
  const tls = config.TLS_CERT !== undefined && config.TLS_KEY !== undefined;
  const dataDir = config.FLOTA_DATA_DIR;
  const tokens = apiTokensOf(config);
  const stored = await generatedToken(dataDir);
  const target: MasterTarget = {
    url: `${tls ? 'https' : 'http'}://${hostPort(config.HOST, config.PORT)}`,
    // A self-signed certificate is its own CA.
    ca: config.TLS_CA?.pem ?? config.TLS_CERT?.pem,
    token:
      options.token ?? tokens.find((t) => t.role === 'admin')?.token ?? tokens[0]?.token ?? stored,
  };
  const master =
    config.PORT === 0 ? ({ running: false, reason: 'PORT=0' } as const) : await probeMaster(target);

  const grpcAddress = hostPort(config.HOST, config.GRPC_PORT);
  // The probes' clients (pg, ioredis, mqtt, grpc-js) load only when the doctor runs.
  const [{ probeStore, storeVerdict }, { probeMqtt }, { probeGrpcHealth, grpcVerdict }] =
    await Promise.all([
      import('./doctor/store.ts'),
      import('./doctor/mqtt-probe.ts'),
      import('./doctor/grpc-health.ts'),
    ]);
  const [ports, data, store, broker, grpc, workers] = await Promise.all([
    checkPorts(config, master.running),
    checkDataDir(dataDir),
    probeStore(config.QUEUE_URL, dataDir),
    config.MQTT_URL
      ? probeMqtt(config.MQTT_URL, {
          username: config.MQTT_USERNAME,
          password: config.MQTT_PASSWORD,
          ca: config.TLS_CA?.pem,
        })
      : undefined,
    master.running
      ? probeGrpcHealth({
          address: grpcAddress,
          tls: tls
            ? {
                ca: target.ca,
                // Under mutual TLS the master asks every client for a certificate.
                ...(config.TLS_CLIENT_AUTH
                  ? { cert: config.TLS_CERT?.pem, key: config.TLS_KEY?.pem }
                  : {}),
              }
            : undefined,
        })
      : undefined,
    master.running ? probeWorkers(target) : undefined,
  ]);

  // The store's clock is the one leases are judged by; else the running master's.
  let clock: ClockSample | undefined;
  let noClock = 'nothing to compare with (the embedded store runs on this clock)';
  if (store.ok && 'clock' in store) clock = store.clock;
  else if (master.running && master.clock) clock = master.clock;
  else if (!store.ok && config.QUEUE_URL) noClock = 'not compared (the store did not answer)';

  return [
    masterVerdict(target, master),
    ...ports,
    ...data,
    storeVerdict(store),
    brokerVerdict(config.MQTT_URL, broker, config.MQTT_USERNAME),
    ...(grpc ? [grpcVerdict(grpcAddress, grpc)] : []),
    ...(workers ? [workersVerdict(workers, target.token !== undefined)] : []),
    clockVerdict(clock, noClock),
    ...exposureVerdicts({
      host: config.HOST,
      tls,
      tokens: tokens.length,
      admins: tokens.filter((t) => t.role === 'admin').length,
      dataDir,
      generatedTokenExists: stored !== undefined,
    }),
    ...[
      tlsVerdict({ cert: config.TLS_CERT, key: config.TLS_KEY, ca: config.TLS_CA }, new Date()),
    ].filter((r): r is CheckResult => r !== undefined),
  ];
}

/** Runs every check against `env` (the CLI's environment, cli/config.ts). */
export async function runDoctor(
  env: NodeJS.ProcessEnv,
  options: DoctorOptions,
): Promise<CheckResult[]> {
  const results = [checkNodeVersion(process.version, requiredNodeRange())];
  const { result, config } = checkConfig(env);
  results.push(result);
  // Every other check reads the configuration: fix it first.
  if (!config) return results;
  return [...results, ...(await checkInstallation(config, options))];
}

/** What `flota doctor` prints; returns the exit code. */
export function report(
  results: CheckResult[],
  options: { json: boolean; colour: boolean },
): { text: string; code: number } {
  const failed = results.filter((r) => !r.ok).length;
  const code = failed === 0 ? 0 : 1;
  if (options.json) return { text: JSON.stringify(results, null, 2), code };
  const checks = results.length === 1 ? '1 check' : `${results.length} checks`;
  const summary = failed === 0 ? `all ${checks} passed` : `${failed} of ${checks} failed`;
  const lines = results.map((r) => formatResult(r, options.colour));
  return { text: [...lines, '', summary].join('\n'), code };
}

/** `flota doctor`, ready for `program.addCommand`. */
export function doctorCommand(environment: () => NodeJS.ProcessEnv): Command {
  return new Command('doctor')
    .description(
      'check this machine and the configuration: Node, ports, data dir, store, broker, gRPC, workers, clock, security',
    )
    .addOption(tokenOption())
    .option('--json', 'print the checks as JSON: [{check, ok, detail, fix}]', false)
    .showHelpAfterError('(flota doctor --help lists the options)')
    .action(async (options: DoctorOptions) => {
      const env = environment();
      const results = await runDoctor(env, options);
      const colour = process.stdout.isTTY === true && !env.NO_COLOR;
      const { text, code } = report(results, { json: options.json, colour });
      console.log(text);
      process.exitCode = code;
    });
}
