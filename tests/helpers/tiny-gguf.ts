/**
 * Writes a tiny but valid GGUF model (format v3, llama architecture) that
 * node-llama-cpp loads and runs: two layers of width 32, random weights from
 * a seed, a SentencePiece-style vocabulary of control tokens, the 256 byte
 * tokens (so any text tokenizes), letters and a handful of words.
 *
 * The output projection is zero for every token but the words, so a greedy
 * (temperature 0) generation only ever picks words: it never ends early on an
 * end-of-generation token and never emits half a UTF-8 character. It runs
 * exactly `maxTokens` tokens and every run gives the same text.
 *
 * Layout (ggml docs/gguf.md): header, metadata key/values, tensor infos,
 * padding to the alignment, tensor data (each tensor aligned).
 */
import { writeFile } from 'node:fs/promises';

export interface TinyGgufOptions {
  /** Seeds the weights: the same seed writes the same model. Default 1. */
  seed?: number;
  /** `general.name`; the file name is what a worker calls the model. */
  name?: string;
  /** A ChatML Jinja template in `tokenizer.chat_template`; without one, no template. */
  chatTemplate?: boolean;
  /** `llama.context_length`. Default 512. */
  contextLength?: number;
  /** Hidden width. Default 32. */
  width?: number;
  /** Transformer blocks. Default 2. */
  layers?: number;
}

export const TINY_WORDS = [
  '▁the',
  '▁cat',
  '▁dog',
  '▁sat',
  '▁on',
  '▁mat',
  '▁red',
  '▁blue',
  '▁hello',
  '▁world',
  '▁is',
  '▁and',
  '▁a',
  '▁small',
  '▁model',
  '▁run',
  '▁fast',
  '▁slow',
  '▁tree',
  '▁sun',
];

const CHATML_TEMPLATE = [
  '{% for message in messages %}',
  "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}",
  '{% endfor %}',
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
].join('');

const GGUF_MAGIC = 0x46554747;
const GGUF_VERSION = 3;
const ALIGNMENT = 32;

// Metadata value types (gguf_type).
const T_UINT32 = 4;
const T_INT32 = 5;
const T_FLOAT32 = 6;
const T_BOOL = 7;
const T_STRING = 8;
const T_ARRAY = 9;

// Token types (llama_token_type).
const NORMAL = 1;
const UNKNOWN = 2;
const CONTROL = 3;
const BYTE = 6;

const GGML_F32 = 0;

type Value =
  | { type: 'u32'; value: number }
  | { type: 'f32'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'string[]'; value: string[] }
  | { type: 'f32[]'; value: number[] }
  | { type: 'i32[]'; value: number[] };

interface Tensor {
  name: string;
  /** ggml order: dims[0] is the length of a row. */
  dims: number[];
  data: Float32Array;
}

/** Little-endian byte sink. */
class Sink {
  private readonly parts: Buffer[] = [];
  length = 0;

  push(buffer: Buffer): void {
    this.parts.push(buffer);
    this.length += buffer.length;
  }

  u32(value: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(value);
    this.push(b);
  }

  i32(value: number): void {
    const b = Buffer.alloc(4);
    b.writeInt32LE(value);
    this.push(b);
  }

  u64(value: number): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(value));
    this.push(b);
  }

  f32(value: number): void {
    const b = Buffer.alloc(4);
    b.writeFloatLE(value);
    this.push(b);
  }

  string(value: string): void {
    const bytes = Buffer.from(value, 'utf8');
    this.u64(bytes.length);
    this.push(bytes);
  }

  pad(): void {
    const rest = this.length % ALIGNMENT;
    if (rest !== 0) this.push(Buffer.alloc(ALIGNMENT - rest));
  }

  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

function writeValue(sink: Sink, value: Value): void {
  switch (value.type) {
    case 'u32':
      sink.u32(T_UINT32);
      sink.u32(value.value);
      return;
    case 'f32':
      sink.u32(T_FLOAT32);
      sink.f32(value.value);
      return;
    case 'bool':
      sink.u32(T_BOOL);
      sink.push(Buffer.from([value.value ? 1 : 0]));
      return;
    case 'string':
      sink.u32(T_STRING);
      sink.string(value.value);
      return;
    case 'string[]':
      sink.u32(T_ARRAY);
      sink.u32(T_STRING);
      sink.u64(value.value.length);
      for (const item of value.value) sink.string(item);
      return;
    case 'f32[]':
      sink.u32(T_ARRAY);
      sink.u32(T_FLOAT32);
      sink.u64(value.value.length);
      for (const item of value.value) sink.f32(item);
      return;
    case 'i32[]':
      sink.u32(T_ARRAY);
      sink.u32(T_INT32);
      sink.u64(value.value.length);
      for (const item of value.value) sink.i32(item);
      return;
    default: {
      const unknown: never = value;
      throw new Error(`unknown value ${String(unknown)}`);
    }
  }
}

/** mulberry32: a small seeded generator, so a seed always gives the same weights. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

interface Vocabulary {
  tokens: string[];
  types: number[];
  /** Token ids the output projection may pick. */
  words: Set<number>;
}

function vocabulary(chatTemplate: boolean): Vocabulary {
  const tokens = ['<unk>', '<s>', '</s>'];
  const types = [UNKNOWN, CONTROL, CONTROL];
  if (chatTemplate) {
    tokens.push('<|im_start|>', '<|im_end|>');
    types.push(CONTROL, CONTROL);
  }
  for (let byte = 0; byte < 256; byte++) {
    tokens.push(`<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(BYTE);
  }
  // SentencePiece builds a word by merging pairs, so every prefix of a word is a piece too.
  const pieces = new Set(['▁', ...'abcdefghijklmnopqrstuvwxyz']);
  for (const word of TINY_WORDS) {
    for (let end = 2; end <= word.length; end++) pieces.add(word.slice(0, end));
  }
  const words = new Set<number>();
  for (const piece of pieces) {
    if (TINY_WORDS.includes(piece)) words.add(tokens.length);
    tokens.push(piece);
    types.push(NORMAL);
  }
  return { tokens, types, words };
}

function tensors(options: Required<TinyGgufOptions>, vocab: Vocabulary): Tensor[] {
  const random = seeded(options.seed);
  const width = options.width;
  const ff = width * 2;
  const n = vocab.tokens.length;
  const uniform = (count: number, scale: number) => {
    const data = new Float32Array(count);
    for (let i = 0; i < count; i++) data[i] = (random() * 2 - 1) * scale;
    return data;
  };
  const ones = (count: number) => new Float32Array(count).fill(1);
  const output = uniform(width * n, 1);
  for (let token = 0; token < n; token++) {
    if (!vocab.words.has(token)) output.fill(0, token * width, (token + 1) * width);
  }
  const list: Tensor[] = [
    { name: 'token_embd.weight', dims: [width, n], data: uniform(width * n, 1) },
    { name: 'output_norm.weight', dims: [width], data: ones(width) },
    { name: 'output.weight', dims: [width, n], data: output },
  ];
  const scale = 1 / Math.sqrt(width);
  for (let layer = 0; layer < options.layers; layer++) {
    const blk = (name: string) => `blk.${layer}.${name}.weight`;
    list.push(
      { name: blk('attn_norm'), dims: [width], data: ones(width) },
      { name: blk('attn_q'), dims: [width, width], data: uniform(width * width, scale) },
      { name: blk('attn_k'), dims: [width, width], data: uniform(width * width, scale) },
      { name: blk('attn_v'), dims: [width, width], data: uniform(width * width, scale) },
      { name: blk('attn_output'), dims: [width, width], data: uniform(width * width, scale) },
      { name: blk('ffn_norm'), dims: [width], data: ones(width) },
      { name: blk('ffn_gate'), dims: [width, ff], data: uniform(width * ff, scale) },
      { name: blk('ffn_up'), dims: [width, ff], data: uniform(width * ff, scale) },
      { name: blk('ffn_down'), dims: [ff, width], data: uniform(ff * width, scale) },
    );
  }
  return list;
}

function metadata(options: Required<TinyGgufOptions>, vocab: Vocabulary): Array<[string, Value]> {
  const heads = 4;
  const entries: Array<[string, Value]> = [
    ['general.architecture', { type: 'string', value: 'llama' }],
    ['general.name', { type: 'string', value: options.name }],
    ['general.file_type', { type: 'u32', value: 0 }],
    ['general.alignment', { type: 'u32', value: ALIGNMENT }],
    ['llama.context_length', { type: 'u32', value: options.contextLength }],
    ['llama.embedding_length', { type: 'u32', value: options.width }],
    ['llama.block_count', { type: 'u32', value: options.layers }],
    ['llama.feed_forward_length', { type: 'u32', value: options.width * 2 }],
    ['llama.attention.head_count', { type: 'u32', value: heads }],
    ['llama.attention.head_count_kv', { type: 'u32', value: heads }],
    ['llama.attention.layer_norm_rms_epsilon', { type: 'f32', value: 1e-5 }],
    ['llama.rope.dimension_count', { type: 'u32', value: options.width / heads }],
    ['llama.vocab_size', { type: 'u32', value: vocab.tokens.length }],
    ['tokenizer.ggml.model', { type: 'string', value: 'llama' }],
    ['tokenizer.ggml.tokens', { type: 'string[]', value: vocab.tokens }],
    // SentencePiece merges by score: longer pieces score higher, so words win over letters.
    [
      'tokenizer.ggml.scores',
      {
        type: 'f32[]',
        value: vocab.tokens.map((t, i) => (vocab.types[i] === NORMAL ? t.length : 0)),
      },
    ],
    ['tokenizer.ggml.token_type', { type: 'i32[]', value: vocab.types }],
    ['tokenizer.ggml.unknown_token_id', { type: 'u32', value: 0 }],
    ['tokenizer.ggml.bos_token_id', { type: 'u32', value: 1 }],
    ['tokenizer.ggml.eos_token_id', { type: 'u32', value: options.chatTemplate ? 4 : 2 }],
    ['tokenizer.ggml.add_bos_token', { type: 'bool', value: true }],
    ['tokenizer.ggml.add_eos_token', { type: 'bool', value: false }],
  ];
  if (options.chatTemplate) {
    entries.push(['tokenizer.chat_template', { type: 'string', value: CHATML_TEMPLATE }]);
  }
  return entries;
}

/** Writes the model to `path`; resolves with its size in bytes. */
export async function writeTinyGguf(path: string, options: TinyGgufOptions = {}): Promise<number> {
  const resolved: Required<TinyGgufOptions> = {
    seed: options.seed ?? 1,
    name: options.name ?? 'tiny',
    chatTemplate: options.chatTemplate ?? false,
    contextLength: options.contextLength ?? 512,
    width: options.width ?? 32,
    layers: options.layers ?? 2,
  };
  const vocab = vocabulary(resolved.chatTemplate);
  const entries = metadata(resolved, vocab);
  const list = tensors(resolved, vocab);

  const sink = new Sink();
  sink.u32(GGUF_MAGIC);
  sink.u32(GGUF_VERSION);
  sink.u64(list.length);
  sink.u64(entries.length);
  for (const [key, value] of entries) {
    sink.string(key);
    writeValue(sink, value);
  }
  let offset = 0;
  for (const tensor of list) {
    sink.string(tensor.name);
    sink.u32(tensor.dims.length);
    for (const dim of tensor.dims) sink.u64(dim);
    sink.u32(GGML_F32);
    sink.u64(offset);
    offset += Math.ceil(tensor.data.byteLength / ALIGNMENT) * ALIGNMENT;
  }
  sink.pad();
  for (const tensor of list) {
    sink.push(Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength));
    sink.pad();
  }
  const bytes = sink.bytes();
  await writeFile(path, bytes);
  return bytes.length;
}
