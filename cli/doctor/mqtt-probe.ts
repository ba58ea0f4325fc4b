/** One MQTT CONNECT, bounded: does a broker answer, and does it take the login? */
import mqtt from 'mqtt';
import type { MqttAnswer } from './broker.ts';
import { PROBE_TIMEOUT_MS, reasonOf } from './result.ts';

export interface MqttLogin {
  username?: string;
  password?: string;
  /** PEM CA for mqtts:// and wss://. */
  ca?: string;
}

export function probeMqtt(url: string, login: MqttLogin = {}): Promise<MqttAnswer> {
  const client = mqtt.connect(url, {
    reconnectPeriod: 0,
    connectTimeout: PROBE_TIMEOUT_MS,
    clean: true,
    ...(login.username ? { username: login.username } : {}),
    ...(login.password ? { password: login.password } : {}),
    ...(login.ca ? { ca: login.ca } : {}),
  });
  return new Promise<MqttAnswer>((resolve) => {
    // connectTimeout ends a silent peer; this ends anything else that hangs.
    const timer = setTimeout(
      () => resolve({ answer: 'none', reason: 'no answer within 2 s' }),
      PROBE_TIMEOUT_MS + 500,
    );
    const settle = (answer: MqttAnswer) => {
      clearTimeout(timer);
      resolve(answer);
    };
    client.once('connect', () => settle({ answer: 'accepted' }));
    client.once('error', (err) => {
      // A CONNACK refusal carries a numeric code; a socket error a string.
      const code = (err as { code?: unknown }).code;
      settle(
        typeof code === 'number'
          ? { answer: 'refused', code }
          : { answer: 'none', reason: reasonOf(err) },
      );
    });
    client.once('close', () => settle({ answer: 'none', reason: 'connection closed' }));
  }).finally(() => {
    client.end(true);
  });
}
