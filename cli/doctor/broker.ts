/**
 * An external broker (MQTT_URL) must answer and take the master's login
 * (MQTT_USERNAME / MQTT_PASSWORD). The embedded one is covered by the
 * MQTT_PORT check.
 */
import { redactUrl } from '../../common/redact.ts';
import { type CheckResult, fail, pass } from './result.ts';

export type MqttAnswer =
  | { answer: 'accepted' }
  /** A CONNACK refusal: a broker is there, the login is not taken. */
  | { answer: 'refused'; code: number }
  | { answer: 'none'; reason: string };

/** CONNACK codes (MQTT 3.1.1 and 5) that mean "wrong user name or password" or "not allowed". */
export const LOGIN_REFUSALS = new Set([4, 5, 134, 135]);

export function brokerVerdict(
  url: string | undefined,
  answer: MqttAnswer | undefined,
  username: string | undefined,
): CheckResult {
  if (url === undefined || answer === undefined) {
    return pass('broker', 'MQTT broker: embedded (its port is checked above)');
  }
  const where = `MQTT broker at ${redactUrl(url)}`;
  switch (answer.answer) {
    case 'accepted':
      return pass(
        'broker',
        `${where} accepts ${username ? `the login ${username}` : 'an anonymous login'}`,
      );
    case 'refused':
      if (LOGIN_REFUSALS.has(answer.code)) {
        return fail(
          'broker',
          where,
          `refused ${username ? `the login ${username}` : 'an anonymous login'} (CONNACK code ${answer.code})`,
          username
            ? 'Check MQTT_USERNAME and MQTT_PASSWORD'
            : 'Set MQTT_USERNAME and MQTT_PASSWORD: this broker takes no anonymous clients',
        );
      }
      return fail(
        'broker',
        where,
        `refused the connection (CONNACK code ${answer.code})`,
        'Check the broker’s log for why',
      );
    case 'none':
      return fail(
        'broker',
        `${where} unreachable`,
        answer.reason,
        'Start the broker, or correct MQTT_URL (unset it to use the embedded broker)',
      );
    default: {
      const unknown: never = answer;
      return unknown;
    }
  }
}
