import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../common/errors.ts';
import { TOPIC_ID_PATTERN } from '../../../proto/src/topics.ts';
import {
  defaultWorkerId,
  loadWorkerConfig,
  requireCredential,
} from '../../../worker/src/config.ts';

describe('loadWorkerConfig', () => {
  it('applies the documented defaults to an empty environment', () => {
    const config = loadWorkerConfig({});
    expect(config).toMatchObject({
      mqttUrl: 'mqtt://127.0.0.1:1883',
      mqttPrefix: 'flota/v1',
      masterGrpc: '127.0.0.1:50051',
      kind: 'cpu',
      slots: 2,
      provider: 'echo',
      models: ['echo'],
      labels: {},
      echoDelayMs: 0,
      echoChunkSize: 16,
      heartbeatMs: 1000,
      logLevel: 'info',
    });
    expect(config.workerId).toMatch(TOPIC_ID_PATTERN);
    expect(config.workerId.startsWith('cpu-')).toBe(true);
  });

  it('reads every variable', () => {
    const config = loadWorkerConfig({
      MQTT_URL: 'mqtt://broker:1884',
      MQTT_USERNAME: 'w1',
      MQTT_PASSWORD: 'pw',
      MQTT_PREFIX: 'acme/v1',
      MASTER_GRPC: 'master:6000',
      WORKER_TOKEN: 'tok',
      WORKER_ID: 'gpu-1',
      WORKER_KIND: 'gpu',
      SLOTS: '8',
      PROVIDER: 'gemini',
      LABELS: 'zone=eu, tier = fast',
      GEMINI_API_KEY: 'AIzaXYZ',
      GEMINI_BASE_URL: 'http://127.0.0.1:9999',
      HEARTBEAT_MS: '250',
      LOG_LEVEL: 'debug',
    });
    expect(config).toMatchObject({
      workerId: 'gpu-1',
      kind: 'gpu',
      slots: 8,
      provider: 'gemini',
      models: ['gemini-2.5-flash'],
      labels: { zone: 'eu', tier: 'fast' },
      workerToken: 'tok',
      geminiBaseUrl: 'http://127.0.0.1:9999',
      heartbeatMs: 250,
    });
  });

  it('lists every problem at once, one line per variable', () => {
    const env = {
      MQTT_URL: 'http://nope',
      MASTER_GRPC: 'no-port',
      WORKER_ID: 'bad id/with+wildcards',
      WORKER_KIND: 'tpu',
      SLOTS: 'two',
      PROVIDER: 'openai',
      LABELS: 'novalue',
      ECHO_CHUNK_SIZE: '0',
      HEARTBEAT_MS: '-5',
      LOG_LEVEL: 'loud',
    };
    let error: unknown;
    try {
      loadWorkerConfig(env);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const lines = (error as ConfigError).message.split('\n').slice(1);
    const named = lines.map((line) => line.replace(/^ {2}- /, '').split(':')[0]);
    expect(new Set(named)).toEqual(
      new Set([
        'MQTT_URL',
        'MASTER_GRPC',
        'WORKER_ID',
        'WORKER_KIND',
        'SLOTS',
        'MODELS',
        'OPENAI_BASE_URL',
        'LABELS',
        'ECHO_CHUNK_SIZE',
        'HEARTBEAT_MS',
        'LOG_LEVEL',
      ]),
    );
    expect(lines.find((l) => l.startsWith('  - MODELS'))).toContain('PROVIDER=openai');
  });

  it('never puts a secret into the error text', () => {
    expect(() =>
      loadWorkerConfig({ SLOTS: 'x', GEMINI_API_KEY: 'AIza-secret', WORKER_TOKEN: 'tok-secret' }),
    ).toThrow(/^(?![\s\S]*secret)[\s\S]*SLOTS/);
  });

  it('accepts an openai setup with base URL and models', () => {
    const config = loadWorkerConfig({
      PROVIDER: 'openai',
      OPENAI_BASE_URL: 'http://localhost:11434/v1',
      MODELS: 'llama3.2, qwen2.5',
    });
    expect(config.models).toEqual(['llama3.2', 'qwen2.5']);
  });
});

describe('credentials and TLS settings', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flota-worker-config-'));
  const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
  const pemFile = (name: string, text = PEM) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('starts from its own credential, or from a join token; one of them is required', () => {
    expect(requireCredential(loadWorkerConfig({ WORKER_TOKEN: 'fwt1.a.1.x' }))).toEqual({
      kind: 'credential',
      token: 'fwt1.a.1.x',
    });
    // A credential of its own wins: no enrollment needed.
    expect(
      requireCredential(loadWorkerConfig({ WORKER_TOKEN: 'fwt1.a', WORKER_JOIN_TOKEN: 'fjt1.b' }))
        .kind,
    ).toBe('credential');
    expect(requireCredential(loadWorkerConfig({ WORKER_JOIN_TOKEN: 'fjt1.cpu-.1.x' }))).toEqual({
      kind: 'join',
      token: 'fjt1.cpu-.1.x',
    });
    const neither = () => requireCredential(loadWorkerConfig({}));
    expect(neither).toThrow(ConfigError);
    expect(neither).toThrow(/WORKER_TOKEN or WORKER_JOIN_TOKEN: required/);
  });

  it('reads TLS_CA, TLS_CERT and TLS_KEY as PEM files; GRPC_TLS follows TLS_CA unless set', () => {
    expect(loadWorkerConfig({}).grpcTls).toBe(false);
    const config = loadWorkerConfig({
      TLS_CA: pemFile('ca.crt'),
      TLS_CERT: pemFile('w.crt'),
      TLS_KEY: pemFile('w.key', PEM.replaceAll('CERTIFICATE', 'PRIVATE KEY')),
    });
    expect(config).toMatchObject({ tlsCa: PEM, tlsCert: PEM, grpcTls: true });
    expect(config.tlsKey).toContain('PRIVATE KEY');
    expect(loadWorkerConfig({ TLS_CA: pemFile('ca.crt'), GRPC_TLS: 'off' }).grpcTls).toBe(false);
    // A master certificate from a public CA: TLS with the system's roots.
    expect(loadWorkerConfig({ GRPC_TLS: 'true' }).grpcTls).toBe(true);
  });

  it('names every TLS problem by its variable', () => {
    let error: unknown;
    try {
      loadWorkerConfig({
        TLS_CA: join(dir, 'missing.crt'),
        TLS_CERT: pemFile('not-pem.crt', 'hello'),
        GRPC_TLS: 'maybe',
      });
    } catch (e) {
      error = e;
    }
    const lines = (error as ConfigError).message.split('\n').slice(1);
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^ {2}- TLS_CA: cannot read .*missing\.crt \(ENOENT\)/),
        expect.stringMatching(/^ {2}- TLS_CERT: .*not a PEM file/),
        expect.stringMatching(/^ {2}- GRPC_TLS: expected 1\/0/),
      ]),
    );
    expect(() => loadWorkerConfig({ TLS_CERT: pemFile('alone.crt') })).toThrow(
      /TLS_KEY: TLS_CERT and TLS_KEY go together/,
    );
  });
});

describe('defaultWorkerId', () => {
  it('makes a valid topic id from any hostname', () => {
    const id = defaultWorkerId('gpu', '_weird host/+#name', 42);
    expect(id).toMatch(TOPIC_ID_PATTERN);
    expect(id).toBe('gpu-weird-host-name-42');
  });
});
