/** One MQTT CONNECT, bounded: does a broker answer, and does it take the login? */
import mqtt from 'mqtt';
import { PROBE_TIMEOUT_MS, reasonOf } from './result.ts';

export type MqttAnswer =
  | { answer: 'accepted' }
  /** A CONNACK refusal: a broker is there, the login is not taken. */
  | { answer: 'refused'; code: number }
  | { answer: 'none'; reason: string };

export interface MqttLogin {
  username?: string;
  password?: string;
  /** PEM CA for mqtts:// and wss://. */
  ca?: string;
}

/** CONNACK codes (MQTT 3.1.1 and 5) that mean "wrong user name or password" or "not allowed". */
export const LOGIN_REFUSALS = new Set([4, 5, 134, 135]);

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
