/**
 * A local HTTP server speaking just enough of Gemini's and OpenAI's streaming
 * REST shapes for provider tests. Bound to 127.0.0.1 on a free port.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type FakeMode = 'ok' | 'hang-after-first' | 'status-401' | 'status-500';

export interface FakeModelServer {
  url: string;
  mode: FakeMode;
  pieces: string[];
  /** Requests seen: method, url, headers, parsed body. */
  requests: Array<{ url: string; headers: http.IncomingHttpHeaders; body: unknown }>;
  close(): Promise<void>;
}

function geminiEvent(text: string, last: boolean): string {
  const event: Record<string, unknown> = {
    candidates: [
      { content: { parts: [{ text }], role: 'model' }, ...(last && { finishReason: 'STOP' }) },
    ],
  };
  if (last)
    event.usageMetadata = { promptTokenCount: 3, candidatesTokenCount: 5, totalTokenCount: 8 };
  return `data: ${JSON.stringify(event)}\r\n\r\n`;
}

function openAiEvent(text: string): string {
  return `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: text } }] })}\n\n`;
}

export async function startFakeModelServer(): Promise<FakeModelServer> {
  const open = new Set<http.ServerResponse>();
  const state: FakeModelServer = {
    url: '',
    mode: 'ok',
    pieces: ['Hello', ', ', 'world', '!'],
    requests: [],
    close: async () => {},
  };
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (chunk: Buffer) => {
      raw += chunk.toString('utf8');
    });
    req.on('end', () => {
      let body: unknown;
      try {
        body = raw ? JSON.parse(raw) : undefined;
      } catch {
        body = raw;
      }
      state.requests.push({ url: req.url ?? '', headers: req.headers, body });
      const gemini = (req.url ?? '').includes(':streamGenerateContent');
      const key =
        (req.headers['x-goog-api-key'] as string | undefined) ??
        (req.headers.authorization ?? '').replace(/^Bearer /, '');
      if (state.mode === 'status-401' || state.mode === 'status-500') {
        const status = state.mode === 'status-401' ? 401 : 500;
        res.writeHead(status, { 'content-type': 'application/json' });
        // Real servers sometimes quote the key back; the provider must scrub it.
        res.end(
          JSON.stringify({ error: { code: status, message: `bad key ${key}`, status: 'ERR' } }),
        );
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      open.add(res);
      res.on('close', () => open.delete(res));
      const pieces = state.pieces;
      if (state.mode === 'hang-after-first') {
        res.write(gemini ? geminiEvent(pieces[0] ?? '', false) : openAiEvent(pieces[0] ?? ''));
        return;
      }
      pieces.forEach((piece, i) => {
        res.write(gemini ? geminiEvent(piece, i === pieces.length - 1) : openAiEvent(piece));
      });
      if (!gemini) {
        res.write(
          `data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 3, completion_tokens: 5 } })}\n\n`,
        );
        res.write('data: [DONE]\n\n');
      }
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  state.url = `http://127.0.0.1:${port}`;
  state.close = async () => {
    for (const res of open) res.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return state;
}
