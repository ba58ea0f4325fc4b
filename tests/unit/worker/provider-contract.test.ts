/** One set of cases, run against every provider (HTTP ones against a local fake server). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProviderError } from '../../../common/errors.ts';
import { createEchoProvider } from '../../../worker/src/providers/echo.ts';
import { createGeminiProvider } from '../../../worker/src/providers/gemini.ts';
import { createOpenAiProvider } from '../../../worker/src/providers/openai.ts';
import type { GenerateRequest, Provider } from '../../../worker/src/providers/types.ts';
import { type FakeModelServer, startFakeModelServer } from './support/fake-model-server.ts';

const SECRET = 'sk-test-0123456789abcdefSECRET';

let server: FakeModelServer;
beforeAll(async () => {
  server = await startFakeModelServer();
});
afterAll(async () => {
  await server.close();
});

interface Fixture {
  name: string;
  /** Talks HTTP, so can fail with HTTP errors. */
  http: boolean;
  make(): Provider;
  model: string;
}

const fixtures: Fixture[] = [
  {
    name: 'echo',
    http: false,
    model: 'echo',
    make: () => createEchoProvider({ delayMs: 5, chunkSize: 4 }),
  },
  {
    name: 'gemini',
    http: true,
    model: 'gemini-2.5-flash',
    make: () => createGeminiProvider({ apiKey: SECRET, baseUrl: server.url }),
  },
  {
    name: 'openai',
    http: true,
    model: 'llama3',
    make: () => createOpenAiProvider({ apiKey: SECRET, baseUrl: `${server.url}/v1` }),
  },
];

function request(model: string, signal: AbortSignal): GenerateRequest {
  return { model, prompt: 'say hello to the world', params: {}, signal };
}

describe.each(fixtures)('provider contract: $name', (fixture) => {
  it('streams chunks whose concatenation equals the final text', async () => {
    server.mode = 'ok';
    const chunks: string[] = [];
    const result = await fixture
      .make()
      .generate(request(fixture.model, new AbortController().signal), (text) => chunks.push(text));
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.join('')).toBe(result.text);
    expect(result.text.length).toBeGreaterThan(0);
    expect(result.usage?.outputTokens).toBeGreaterThan(0);
  });

  it('honours abort with an aborted ProviderError', async () => {
    server.mode = 'hang-after-first';
    const controller = new AbortController();
    const promise = fixture.make().generate(request(fixture.model, controller.signal), () => {
      controller.abort();
    });
    const error = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ProviderError);
    expect((error as ProviderError).code).toBe('aborted');
  });
});

describe.each(fixtures.filter((f) => f.http))('provider contract (HTTP): $name', (fixture) => {
  it.each([401, 500])('maps HTTP %i to a ProviderError without the key', async (status) => {
    server.mode = status === 401 ? 'status-401' : 'status-500';
    const error = await fixture
      .make()
      .generate(request(fixture.model, new AbortController().signal), () => {})
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(ProviderError);
    const message = (error as ProviderError).message;
    expect(message).toContain(String(status));
    expect(message).not.toContain(SECRET);
    expect(message).not.toContain('SECRET');
  });
});

describe('request shapes', () => {
  it('gemini sends the key as a header to :streamGenerateContent?alt=sse', async () => {
    server.mode = 'ok';
    server.requests.length = 0;
    const provider = createGeminiProvider({ apiKey: 'worker-key-1234', baseUrl: server.url });
    await provider.generate(
      {
        ...request('gemini-2.5-flash', new AbortController().signal),
        apiKey: 'user-key-5678',
        params: { maxTokens: 64, stop: ['END'] },
      },
      () => {},
    );
    const seen = server.requests[0];
    expect(seen?.url).toBe('/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse');
    expect(seen?.headers['x-goog-api-key']).toBe('user-key-5678');
    expect(seen?.body).toMatchObject({
      generationConfig: { maxOutputTokens: 64, stopSequences: ['END'] },
    });
  });

  it('openai posts a streaming chat completion with a bearer token', async () => {
    server.mode = 'ok';
    server.requests.length = 0;
    const provider = createOpenAiProvider({ apiKey: 'k-1234', baseUrl: `${server.url}/v1/` });
    await provider.generate(
      {
        ...request('llama3', new AbortController().signal),
        params: { temperature: 0.2, stop: ['END', '\n\n'] },
      },
      () => {},
    );
    const seen = server.requests[0];
    expect(seen?.url).toBe('/v1/chat/completions');
    expect(seen?.headers.authorization).toBe('Bearer k-1234');
    expect(seen?.body).toMatchObject({
      model: 'llama3',
      stream: true,
      temperature: 0.2,
      stop: ['END', '\n\n'],
    });
  });

  it('gemini without any key fails with an actionable message', async () => {
    const provider = createGeminiProvider({ baseUrl: server.url });
    await expect(
      provider.generate(request('gemini-2.5-flash', new AbortController().signal), () => {}),
    ).rejects.toThrow(/GEMINI_API_KEY/);
  });
});

describe('continuing a half-streamed answer (continueFrom)', () => {
  const signal = () => new AbortController().signal;

  it('echo streams only what follows the continued text', async () => {
    const echo = createEchoProvider({ delayMs: 0, chunkSize: 4 });
    const whole = await echo.generate(request('echo', signal()), () => undefined);
    const continueFrom = whole.text.slice(0, 9);
    const chunks: string[] = [];
    const rest = await echo.generate({ ...request('echo', signal()), continueFrom }, (text) =>
      chunks.push(text),
    );
    expect(echo.continues).toBe(true);
    expect(chunks.join('')).toBe(rest.text);
    expect(`${continueFrom}${rest.text}`).toBe(whole.text);
  });

  it.each([
    ['prefill', {}],
    ['vllm', { continue_final_message: true, add_generation_prompt: false }],
  ] as const)(
    'openai (%s) sends the text as the assistant turn to carry on',
    async (mode, extra) => {
      server.mode = 'ok';
      server.requests.length = 0;
      const provider = createOpenAiProvider({
        baseUrl: `${server.url}/v1`,
        continuation: mode,
      });
      expect(provider.continues).toBe(true);
      await provider.generate(
        { ...request('llama3', signal()), continueFrom: 'Hello, wor' },
        () => undefined,
      );
      const body = server.requests.at(-1)?.body as Record<string, unknown>;
      expect(body.messages).toEqual([
        { role: 'user', content: 'say hello to the world' },
        { role: 'assistant', content: 'Hello, wor' },
      ]);
      expect(body).toMatchObject(extra);
      if (mode === 'prefill') expect(body).not.toHaveProperty('continue_final_message');
    },
  );

  it('openai without continuation says so and sends no assistant turn', async () => {
    const provider = createOpenAiProvider({ baseUrl: `${server.url}/v1` });
    expect(provider.continues).toBe(false);
  });
});
