/**
 * Two connected in-memory duplex streams: what one side writes, the other
 * reads. The master's own MQTT client talks to the embedded broker over such
 * a pair, so it needs no socket, no TLS certificate naming the loopback
 * address, and no client certificate under mutual TLS. (Node 22 has
 * `stream.duplexPair`; this is the same for Node 20.)
 */
import { Duplex } from 'node:stream';

class PairEnd extends Duplex {
  peer!: PairEnd;
  /** The writer's callback held back until this side's reader asks for more. */
  private pendingWrite: (() => void) | undefined;

  override _read(): void {
    const release = this.pendingWrite;
    this.pendingWrite = undefined;
    release?.();
  }

  override _write(
    chunk: Buffer,
    _encoding: BufferEncoding,
    callback: (err?: Error | null) => void,
  ) {
    // Backpressure: a reader that stopped reading stops the writer.
    if (this.peer.push(chunk)) callback();
    else this.peer.pendingWrite = () => callback();
  }

  override _final(callback: (err?: Error | null) => void) {
    this.peer.push(null);
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void) {
    const release = this.peer.pendingWrite;
    this.peer.pendingWrite = undefined;
    release?.();
    if (!this.peer.destroyed) this.peer.destroy();
    callback(err);
  }
}

export function duplexPair(): [Duplex, Duplex] {
  const a = new PairEnd();
  const b = new PairEnd();
  a.peer = b;
  b.peer = a;
  return [a, b];
}
