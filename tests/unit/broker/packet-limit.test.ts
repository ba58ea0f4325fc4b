import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { limitPacketSize, PacketScanner } from '../../../master/src/broker/packet-limit.ts';

/** A fixed header: type byte, then `length` as MQTT's variable byte integer. */
function header(length: number, type = 0x30): Buffer {
  const bytes = [type];
  let rest = length;
  do {
    let digit = rest % 128;
    rest = Math.floor(rest / 128);
    if (rest > 0) digit |= 0x80;
    bytes.push(digit);
  } while (rest > 0);
  return Buffer.from(bytes);
}

const packet = (bodyBytes: number) =>
  Buffer.concat([header(bodyBytes), Buffer.alloc(bodyBytes, 7)]);

describe('PacketScanner', () => {
  it('accepts packets up to the limit, counted with their fixed header', () => {
    const scanner = new PacketScanner(100);
    // 1 type byte + 1 length byte + 98 = 100.
    expect(scanner.push(packet(98))).toEqual({ ok: true });
    expect(scanner.push(packet(0))).toEqual({ ok: true });
    expect(new PacketScanner(100).push(packet(99))).toEqual({
      ok: false,
      reason: 'too_large',
      bytes: 101,
    });
  });

  it('follows packet boundaries across chunks, even inside a fixed header', () => {
    const scanner = new PacketScanner(800);
    const stream = Buffer.concat([packet(10), packet(200), packet(0), packet(900)]);
    const split = 12 + 203 + 2;
    for (let i = 0; i < split; i += 3) {
      expect(scanner.push(stream.subarray(i, Math.min(i + 3, split)))).toEqual({ ok: true });
    }
    // The 900-byte packet's header (0x30, 0x84, 0x07), fed one piece at a time.
    const rest = stream.subarray(split);
    expect(scanner.push(rest.subarray(0, 1))).toEqual({ ok: true });
    expect(scanner.push(rest.subarray(1, 2))).toEqual({ ok: true });
    expect(scanner.push(rest.subarray(2, 3))).toEqual({
      ok: false,
      reason: 'too_large',
      bytes: 903,
    });
  });

  it('refuses a declared length as soon as its header arrives, before any body', () => {
    const scanner = new PacketScanner(262_144);
    expect(scanner.push(header(200 * 1024 * 1024))).toMatchObject({
      ok: false,
      reason: 'too_large',
    });
  });

  it('refuses a Remaining Length longer than four bytes', () => {
    const scanner = new PacketScanner(Number.MAX_SAFE_INTEGER);
    expect(scanner.push(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]))).toEqual({
      ok: false,
      reason: 'malformed',
    });
  });

  it('handles many packets in one chunk', () => {
    const scanner = new PacketScanner(50);
    const chunk = Buffer.concat(Array.from({ length: 100 }, (_, i) => packet(i % 48)));
    expect(scanner.push(chunk)).toEqual({ ok: true });
  });
});

describe('limitPacketSize', () => {
  it('destroys the stream at the first oversized packet, as the reader reads it', async () => {
    const conn = new PassThrough();
    const seen: Buffer[] = [];
    // As aedes does: a 'readable' listener that reads, attached before the guard.
    conn.on('readable', () => {
      let chunk: Buffer | null = conn.read();
      while (chunk !== null) {
        seen.push(chunk);
        chunk = conn.read();
      }
    });
    const refused = new Promise((resolve) => limitPacketSize(conn, 64, resolve));
    conn.write(packet(10));
    conn.write(header(10_000));
    expect(await refused).toMatchObject({ reason: 'too_large', bytes: 10_003 });
    expect(conn.destroyed).toBe(true);
    expect(Buffer.concat(seen).length).toBeLessThanOrEqual(12 + 3);
  });
});
