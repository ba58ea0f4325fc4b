/**
 * A bound on the size of each MQTT packet a client sends. aedes has no such
 * option: its parser buffers a packet until the whole Remaining Length has
 * arrived, so one client declaring 200 MB could make the broker hold 200 MB.
 * This scanner reads only MQTT's fixed headers as bytes flow past and says
 * "too large" as soon as a header declares more than the limit, before the
 * body arrives.
 *
 * Fixed header: one byte (type and flags), then the Remaining Length as a
 * variable byte integer (1–4 bytes, 7 bits each, high bit = more bytes follow),
 * then that many bytes of variable header and payload.
 */
import type { Duplex } from 'node:stream';

export type ScanResult =
  | { ok: true }
  | { ok: false; reason: 'too_large' | 'malformed'; bytes?: number };

/** The most bytes a Remaining Length may take (MQTT 3.1.1 §2.2.3). */
const MAX_LENGTH_BYTES = 4;

export class PacketScanner {
  /** Bytes of the current packet's body still to skip. */
  private remaining = 0;
  /** Inside a fixed header: how many Remaining Length bytes were read (−1: at the type byte). */
  private lengthBytes = -1;
  private length = 0;
  private multiplier = 1;
  private inBody = false;

  constructor(private readonly maxPacketBytes: number) {}

  /** Feeds the next chunk of the stream; a refusal is final (close the connection). */
  push(chunk: Uint8Array): ScanResult {
    let i = 0;
    while (i < chunk.length) {
      if (this.inBody) {
        const skip = Math.min(this.remaining, chunk.length - i);
        this.remaining -= skip;
        i += skip;
        if (this.remaining === 0) this.inBody = false;
        continue;
      }
      const byte = chunk[i] as number;
      i++;
      if (this.lengthBytes === -1) {
        this.lengthBytes = 0;
        this.length = 0;
        this.multiplier = 1;
        continue;
      }
      this.length += (byte & 0x7f) * this.multiplier;
      this.multiplier *= 128;
      this.lengthBytes++;
      if (byte & 0x80) {
        if (this.lengthBytes === MAX_LENGTH_BYTES) return { ok: false, reason: 'malformed' };
        continue;
      }
      const total = 1 + this.lengthBytes + this.length;
      if (total > this.maxPacketBytes) return { ok: false, reason: 'too_large', bytes: total };
      this.lengthBytes = -1;
      this.remaining = this.length;
      this.inBody = this.remaining > 0;
    }
    return { ok: true };
  }
}

/**
 * Watches what the broker reads from `conn` and destroys the connection at
 * the first packet over the limit. The listener is added after aedes' own
 * 'readable' listener, so it never switches the stream to flowing mode: it
 * sees each chunk as aedes reads it, and aedes never gets more than the chunk
 * that carried the oversized header.
 */
export function limitPacketSize(
  conn: Duplex,
  maxPacketBytes: number,
  onRefused: (result: Exclude<ScanResult, { ok: true }>) => void,
): void {
  const scanner = new PacketScanner(maxPacketBytes);
  const onData = (chunk: Buffer) => {
    const result = scanner.push(chunk);
    if (result.ok) return;
    conn.off('data', onData);
    onRefused(result);
    conn.destroy();
  };
  conn.on('data', onData);
}
