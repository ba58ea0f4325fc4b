import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../common/errors.ts';
import {
  optionsFromHeaders,
  parseChatRequest,
  toSubmission,
} from '../../../master/src/http/openai-request.ts';

const headers = (values: Record<string, string>) => (name: string) => values[name];
const submissionOf = (body: unknown, values: Record<string, string> = {}) =>
  toSubmission(parseChatRequest(body), optionsFromHeaders(headers(values)));

describe('an OpenAI chat request as a flota submission', () => {
  it('takes the last message as the prompt and the ones before as history', () => {
    const submission = submissionOf({
      model: 'llama3',
      messages: [
        { role: 'developer', content: 'Be brief.' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'first ' },
            { type: 'text', text: 'part' },
          ],
        },
        { role: 'assistant', content: 'an answer' },
        { role: 'user', content: 'the question' },
      ],
      max_tokens: 50,
      max_completion_tokens: 70,
      temperature: 0.5,
      stop: 'END',
    });
    expect(submission).toEqual({
      prompt: 'the question',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'first part' },
        { role: 'assistant', content: 'an answer' },
      ],
      model: 'llama3',
      params: { temperature: 0.5, maxTokens: 70, stop: ['END'] },
    });
  });

  it('takes options from headers, and the body’s flota field over them', () => {
    const body = { model: 'echo', messages: [{ role: 'user', content: 'hi' }] };
    expect(
      submissionOf(body, {
        'x-flota-priority': '9',
        'x-flota-gpu': 'true',
        'x-flota-labels': 'zone=eu, tier=a',
        'x-flota-timeout-ms': '5000',
        'x-flota-cache': 'false',
      }),
    ).toMatchObject({
      priority: 9,
      requires: { gpu: true, labels: { zone: 'eu', tier: 'a' } },
      timeoutMs: 5000,
      cache: false,
    });
    expect(
      submissionOf({ ...body, flota: { priority: 2 } }, { 'x-flota-priority': '9' }),
    ).toMatchObject({ priority: 2 });
  });

  it('refuses what it cannot do, naming the field or header', () => {
    const user = [{ role: 'user', content: 'hi' }];
    const refusal = (body: unknown, values: Record<string, string> = {}) => {
      try {
        submissionOf(body, values);
      } catch (err) {
        expect(err).toBeInstanceOf(ValidationError);
        return (err as Error).message;
      }
      throw new Error('accepted');
    };
    expect(refusal({ model: 'echo', messages: [] })).toMatch(/messages/);
    expect(refusal({ model: 'echo', messages: user, n: 2 })).toMatch(/one choice/);
    expect(refusal({ model: 'echo', messages: user, tools: [] })).toMatch(/tools/);
    expect(refusal({ model: 'echo', messages: user, stop: ['a', 'b', 'c', 'd', 'e'] })).toMatch(
      /stop/,
    );
    expect(
      refusal({ model: 'echo', messages: [{ role: 'user', content: [{ type: 'image_url' }] }] }),
    ).toMatch(/content/);
    expect(refusal({ model: 'echo', messages: [{ role: 'assistant', content: 'hi' }] })).toMatch(
      /last message must be the user/,
    );
    expect(refusal({ model: 'echo', messages: user }, { 'x-flota-priority': 'high' })).toMatch(
      /x-flota-priority/,
    );
    expect(refusal({ model: 'echo', messages: user }, { 'x-flota-labels': 'zone' })).toMatch(
      /x-flota-labels/,
    );
    expect(refusal({ model: 'echo', messages: user }, { 'x-flota-priority': '5000' })).toMatch(
      /priority/,
    );
  });
});
