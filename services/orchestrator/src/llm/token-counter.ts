import type { Usage } from '@actionedx/shared';
import type { PromptMessage } from '../tasks/index.js';

/** The BPE encodings of OpenAI's model families that `gpt-tokenizer` ships. */
export type EncodingName = 'o200k_base' | 'cl100k_base';

interface Encoding {
  countTokens(text: string): number;
  encodeChat(chat: readonly PromptMessage[], model: 'gpt-4o' | 'gpt-4'): number[];
}

/** gpt-4 and gpt-3.5 speak cl100k; the 4o, 4.1, 4.5, 5 and o-series families, and models we do not know, o200k. */
const CL100K = /^(gpt-4(?!o|\.)|gpt-3\.5|text-embedding-(ada|3))/;

export const encodingOf = (model: string): EncodingName => (CL100K.test(model) ? 'cl100k_base' : 'o200k_base');

/**
 * Counts tokens with `gpt-tokenizer` when a provider sends no usage: the figure is then an estimate (exact for
 * OpenAI's own models, close for others). An encoding is loaded on first use, once per process, off the
 * common path: loading o200k takes about 0.7 s and 70 MB, so `prepare` starts it as soon as a stream looks
 * like it will carry no usage.
 */
export class TokenCounter {
  private readonly loading = new Map<EncodingName, Promise<Encoding>>();

  prepare(model: string): void {
    void this.encoding(encodingOf(model)).catch(() => {});
  }

  async usage(model: string, messages: readonly PromptMessage[], completion: string): Promise<Usage> {
    const name = encodingOf(model);
    const enc = await this.encoding(name);
    const prompt_tokens = enc.encodeChat(messages, name === 'cl100k_base' ? 'gpt-4' : 'gpt-4o').length;
    const completion_tokens = enc.countTokens(completion);
    return { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens };
  }

  private encoding(name: EncodingName): Promise<Encoding> {
    let p = this.loading.get(name);
    if (!p) {
      p = (name === 'cl100k_base' ? import('gpt-tokenizer/encoding/cl100k_base') : import('gpt-tokenizer/encoding/o200k_base')) as Promise<Encoding>;
      this.loading.set(name, p);
      p.catch(() => this.loading.delete(name));
    }
    return p;
  }
}
