/**
 * The alert settings as the master reads them: a webhook URL needs its
 * secret (the master refuses to start, saying so), URLs are checked whole,
 * the error-rate bound is a share, and the secret is never repeated back.
 */
import { describe, expect, it } from 'vitest';
import { loadMasterConfig } from '../../../master/src/config.ts';

describe('alert configuration', () => {
  it('refuses ALERT_WEBHOOK_URL without ALERT_WEBHOOK_SECRET, with a message to act on', () => {
    expect(() =>
      loadMasterConfig({ ALERT_WEBHOOK_URL: 'https://hooks.example.com/flota' }),
    ).toThrow(/ALERT_WEBHOOK_SECRET: required with ALERT_WEBHOOK_URL/);
    const config = loadMasterConfig({
      ALERT_WEBHOOK_URL: 'https://hooks.example.com/flota',
      ALERT_WEBHOOK_SECRET: 'a-long-enough-secret',
    });
    expect(config.ALERT_WEBHOOK_URL).toBe('https://hooks.example.com/flota');
  });

  it('checks the URLs and the bounds', () => {
    for (const url of ['ftp://hooks.example.com', 'http:/missing-slash', 'hooks.example.com']) {
      expect(() =>
        loadMasterConfig({ ALERT_WEBHOOK_URL: url, ALERT_WEBHOOK_SECRET: 'a-long-enough-secret' }),
      ).toThrow(/ALERT_WEBHOOK_URL: must be an http:\/\/ or https:\/\/ URL/);
    }
    expect(() => loadMasterConfig({ PROMETHEUS_URL: 'prometheus:9090' })).toThrow(/PROMETHEUS_URL/);
    expect(() => loadMasterConfig({ ALERT_ERROR_RATE: '1.5' })).toThrow(/ALERT_ERROR_RATE/);
    expect(loadMasterConfig({ ALERT_ERROR_RATE: '0.05' }).ALERT_ERROR_RATE).toBe(0.05);
    expect(loadMasterConfig({ ALERT_ERROR_RATE: '0' }).ALERT_ERROR_RATE).toBe(0);
    expect(() => loadMasterConfig({ ALERT_WINDOW_SECONDS: '5' })).toThrow(/ALERT_WINDOW_SECONDS/);
  });

  it('never repeats the secret in a problem report', () => {
    let message = '';
    try {
      loadMasterConfig({ ALERT_WEBHOOK_URL: 'https://h.example', ALERT_WEBHOOK_SECRET: 'short-x' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/ALERT_WEBHOOK_SECRET: must be at least 16 characters/);
    expect(message).not.toContain('short-x');
  });
});
