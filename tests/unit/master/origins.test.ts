import { describe, expect, it } from 'vitest';
import {
  isLoopbackHostHeader,
  judgeOrigin,
  normalizeOrigin,
} from '../../../master/src/http/origins.ts';

const listed = new Set(['https://app.example.com']);
const at = (origin: string | undefined, extra: Partial<Parameters<typeof judgeOrigin>[0]> = {}) =>
  judgeOrigin({ origin, host: '127.0.0.1:8080', secure: false, ...extra }, listed);

describe('origin policy', () => {
  it('normalizes origins and refuses what is not http(s)', () => {
    expect(normalizeOrigin('HTTPS://App.Example.com:443/')).toBe('https://app.example.com');
    expect(normalizeOrigin('http://localhost:80')).toBe('http://localhost');
    expect(normalizeOrigin('null')).toBeUndefined();
    expect(normalizeOrigin('file:///etc/passwd')).toBeUndefined();
    expect(normalizeOrigin('')).toBeUndefined();
  });

  it('lets requests without Origin through (not a browser page)', () => {
    expect(at(undefined)).toBe('absent');
  });

  it('accepts the master’s own origin: same host, port and scheme', () => {
    expect(at('http://127.0.0.1:8080')).toBe('same');
    expect(at('https://127.0.0.1:8080')).toBe('foreign');
    expect(at('https://127.0.0.1:8080', { secure: true })).toBe('same');
    expect(at('http://127.0.0.1:8081')).toBe('foreign');
    expect(at('http://localhost:8080')).toBe('foreign');
    expect(at('http://127.0.0.1:8080', { host: undefined })).toBe('foreign');
  });

  it('takes the scheme a TLS-terminating proxy forwarded', () => {
    expect(at('https://flota.example', { host: 'flota.example', forwardedProto: 'https' })).toBe(
      'same',
    );
    expect(at('https://flota.example', { host: 'flota.example', forwardedProto: 'gopher' })).toBe(
      'foreign',
    );
  });

  it('accepts listed origins and refuses every other page', () => {
    expect(at('https://app.example.com')).toBe('listed');
    expect(at('https://APP.example.com:443')).toBe('listed');
    expect(at('http://app.example.com')).toBe('foreign');
    expect(at('https://evil.example')).toBe('foreign');
    expect(at('null')).toBe('foreign');
  });

  it('knows loopback Host headers (the DNS rebinding guard)', () => {
    for (const host of ['127.0.0.1:8080', 'localhost', 'LOCALHOST:1', '[::1]:8080', undefined]) {
      expect(isLoopbackHostHeader(host), String(host)).toBe(true);
    }
    for (const host of ['evil.example:8080', '10.0.0.5', 'localhost.evil.example', '[::2]']) {
      expect(isLoopbackHostHeader(host), host).toBe(false);
    }
  });
});
