/**
 * Token counts for answers whose provider gave none: counted with a general
 * BPE tokenizer (OpenAI's o200k), loaded on first use only, so a worker whose
 * provider reports its own counts never pays for it. A count from here is an
 * estimate for any other model's tokenizer, and is marked so.
 */
import type { ChatMessage } from '../../proto/src/schemas/task.ts';
import type { Usage } from './providers/types.ts';

type Counter = (text: string) => number;
let counter: Promise<Counter> | undefined;

function loadCounter(): Promise<Counter> {
  counter ??= import('gpt-tokenizer').then((module) => (text: string) => module.countTokens(text));
  return counter;
}

/** Input tokens (the conversation and the prompt) and output tokens (the answer), estimated. */
export async function estimateUsage(
  input: { prompt: string; messages?: ChatMessage[] },
  answer: string,
): Promise<Usage> {
  const count = await loadCounter();
  const history = (input.messages ?? []).reduce((sum, m) => sum + count(m.content), 0);
  return {
    inputTokens: history + count(input.prompt),
    outputTokens: count(answer),
    estimated: true,
  };
}
