import { Redis } from 'ioredis';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { type MosquittoServer, startMosquitto } from '../../helpers/mosquitto-server.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { waitFor } from '../../helpers/wait-for.ts';

const started: Array<RedisServer | MosquittoServer> = [];
afterAll(async () => {
  for (const server of started) await server.stop();
});

async function redisAnswers(url: string): Promise<boolean> {
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

async function mqttAnswers(url: string, opts: mqtt.IClientOptions = {}): Promise<boolean> {
  try {
    const client = await mqtt.connectAsync(url, {
      reconnectPeriod: 0,
      connectTimeout: 2_000,
      ...opts,
    });
    await client.endAsync();
    return true;
  } catch {
    return false;
  }
}

describe('startRedis', () => {
  it('serves on 127.0.0.1, survives restart on the same URL, and goes away on kill', async () => {
    const redis = await startRedis();
    started.push(redis);
    expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
    expect(await redisAnswers(redis.url)).toBe(true);

    await redis.restart();
    expect(await redisAnswers(redis.url)).toBe(true);

    redis.kill();
    await waitFor(async () => !(await redisAnswers(redis.url)), { what: 'redis to die' });
    await redis.restart();
    expect(await redisAnswers(redis.url)).toBe(true);
    await redis.stop();
    expect(await redisAnswers(redis.url)).toBe(false);
  });
});

describe('startMosquitto', () => {
  it('accepts anonymous MQTT clients and restarts on the same URL', async () => {
    const broker = await startMosquitto();
    started.push(broker);
    expect(broker.url).toBe(`mqtt://127.0.0.1:${broker.port}`);
    expect(await mqttAnswers(broker.url)).toBe(true);
    await broker.restart();
    expect(await mqttAnswers(broker.url)).toBe(true);
    await broker.stop();
    expect(await mqttAnswers(broker.url)).toBe(false);
  });

  it('applies extraConfig (here: anonymous clients refused) and still starts', async () => {
    const broker = await startMosquitto({ extraConfig: 'allow_anonymous false' });
    started.push(broker);
    expect(await mqttAnswers(broker.url)).toBe(false);
    await broker.stop();
  });
});
