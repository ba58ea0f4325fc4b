/**
 * Streams answers through the OpenAI-compatible API (`POST /v1/chat/completions`,
 * `stream: true`) while workers die, as an OpenAI SDK would read them: the
 * content deltas, concatenated, must be the answer exactly, with no text
 * repeated, and no chunk may announce a restart (echo workers continue).
 */

export interface V1Request {
  prompt: string;
  expected: string;
}

export interface V1Outcome {
  requests: number;
  /** Streams that ended with `[DONE]` and carried exactly the answer. */
  whole: number;
  /** Streams whose text was not the answer (repeated, missing or foreign text). */
  broken: string[];
  /** Chunks that announced an answer starting over (`flota.restarted`). */
  restarts: number;
  /** Requests that failed (HTTP error, a stream cut short, an error event). */
  errors: string[];
}

interface StreamChunk {
  choices?: Array<{ delta?: { content?: string } }>;
  flota?: { restarted?: { attempt: number } };
  error?: { message?: string };
}

export class V1StreamClient {
  private readonly results: Array<Promise<void>> = [];
  private readonly outcome: V1Outcome = {
    requests: 0,
    whole: 0,
    broken: [],
    restarts: 0,
    errors: [],
  };

  constructor(
    private readonly baseUrl: string,
    private readonly model: string,
  ) {}

  /** Starts one streamed request; it is awaited by `settle`. */
  send(request: V1Request, deadlineAt: number): void {
    this.outcome.requests++;
    this.results.push(
      this.stream(request, deadlineAt).catch((error: unknown) => {
        this.outcome.errors.push(error instanceof Error ? error.message : String(error));
      }),
    );
  }

  /** Waits for every stream to end (each is bounded by its deadline). */
  async settle(): Promise<V1Outcome> {
    await Promise.all(this.results);
    return this.outcome;
  }

  private async stream(request: V1Request, deadlineAt: number): Promise<void> {
    const response = await fetch(`${this.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: this.model,
        messages: [{ role: 'user', content: request.prompt }],
        stream: true,
      }),
      signal: AbortSignal.timeout(Math.max(1_000, deadlineAt - Date.now())),
    });
    if (response.status !== 200 || !response.body) {
      throw new Error(`HTTP ${response.status}: ${(await response.text()).slice(0, 200)}`);
    }
    let text = '';
    let done = false;
    let buffered = '';
    const decoder = new TextDecoder();
    for await (const bytes of response.body) {
      buffered += decoder.decode(bytes, { stream: true });
      let end = buffered.indexOf('\n\n');
      while (end !== -1) {
        const event = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        end = buffered.indexOf('\n\n');
        if (!event.startsWith('data: ')) continue; // a keep-alive comment
        const data = event.slice('data: '.length);
        if (data === '[DONE]') {
          done = true;
          continue;
        }
        const chunk = JSON.parse(data) as StreamChunk;
        if (chunk.error) throw new Error(`error event: ${chunk.error.message}`);
        if (chunk.flota?.restarted) this.outcome.restarts++;
        text += chunk.choices?.[0]?.delta?.content ?? '';
      }
    }
    if (!done) throw new Error(`stream ended without [DONE] after ${text.length} characters`);
    if (text === request.expected) this.outcome.whole++;
    else this.outcome.broken.push(`${JSON.stringify(text.slice(0, 160))} for ${request.prompt}`);
  }
}
