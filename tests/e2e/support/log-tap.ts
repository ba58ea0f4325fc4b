/**
 * The real `mosquitto_sub` binary (Debian mosquitto-clients) listening on a
 * broker, exactly as a person would to watch flota's logs.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { waitFor } from '../../helpers/wait-for.ts';

export interface TappedMessage {
  topic: string;
  payload: string;
}

export interface LogTap {
  readonly messages: TappedMessage[];
  /** Everything mosquitto_sub wrote to stderr (connection errors). */
  stderr(): string;
  stop(): Promise<void>;
}

/** Spawns `stdbuf -oL mosquitto_sub -h 127.0.0.1 -p <port> -t <topic> -v` and resolves once it subscribed. */
export async function tapTopic(port: number, topic: string): Promise<LogTap> {
  // stdbuf: mosquitto_sub block-buffers a piped stdout, which would hold lines back.
  const child: ChildProcess = spawn(
    'stdbuf',
    ['-oL', 'mosquitto_sub', '-h', '127.0.0.1', '-p', String(port), '-t', topic, '-v', '-d'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const messages: TappedMessage[] = [];
  let err = '';
  let debug = '';
  let partial = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  child.stdout?.on('data', (chunk: Buffer) => {
    partial += chunk.toString();
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      // With -d, mosquitto_sub interleaves its protocol trace ("Client ... received SUBACK").
      if (line.startsWith('Client ') || line.startsWith('Subscribed ')) {
        debug += `${line}\n`;
        continue;
      }
      const space = line.indexOf(' ');
      if (space > 0) messages.push({ topic: line.slice(0, space), payload: line.slice(space + 1) });
    }
  });
  const stop = async () => {
    process.off('exit', killOnExit);
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await exited;
  };
  try {
    await waitFor(() => debug.includes('SUBACK') || child.exitCode !== null, {
      timeoutMs: 10_000,
      what: `mosquitto_sub to subscribe on port ${port}`,
    });
    if (child.exitCode !== null) throw new Error(`mosquitto_sub exited: ${err}`);
  } catch (e) {
    await stop();
    throw e;
  }
  return { messages, stderr: () => err, stop };
}
