// The conversation on screen: message bubbles, and the answer that streams in chunk by chunk.

const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  node.append(...children.filter((c) => c !== undefined && c !== null));
  return node;
};
export { el };

const money = (usd) => (usd === 0 ? '$0' : usd < 0.01 ? `$${usd.toFixed(6)}` : `$${usd.toFixed(4)}`);

/** The figures under an answer: cached marker, model, cost, tokens, latency. */
export function answerMeta(r) {
  const meta = el('div', { class: 'meta' });
  if (r.cached) meta.append(el('span', { class: 'badge cached', title: 'Served from the response cache: no model call, no cost' }, 'cached'));
  if (r.model) meta.append(el('span', { class: 'badge' }, `model ${r.model}`));
  if (typeof r.cost_usd === 'number') meta.append(el('span', { class: 'badge' }, `cost ${money(r.cost_usd)}`));
  if (r.usage?.total_tokens !== undefined) meta.append(el('span', { class: 'badge' }, `${r.usage.total_tokens} tokens`));
  if (typeof r.latency_ms === 'number') meta.append(el('span', { class: 'badge' }, `${Math.round(r.latency_ms)} ms`));
  if (r.mode) meta.append(el('span', { class: 'badge' }, r.mode));
  if (r.task_type) meta.append(el('span', { class: 'badge' }, r.task_type));
  if (r.resumed) meta.append(el('span', { class: 'badge warn' }, 'resumed'));
  return meta;
}

export class ChatView {
  /** `announce`: a polite live region; what a screen reader should read (whole answers, notices). */
  constructor(log, announce) {
    this.log = log;
    this.announce = (text) => {
      if (announce) announce.textContent = text;
    };
  }

  clear() {
    this.log.replaceChildren();
  }

  scroll() {
    this.log.scrollTop = this.log.scrollHeight;
  }

  user(text, author) {
    const node = el('div', { class: 'msg user' }, author ? el('span', { class: 'author' }, author) : undefined, el('span', { class: 'text' }, text));
    this.log.append(node);
    this.scroll();
    return node;
  }

  system(text, kind = 'system', quiet = false) {
    const node = el('div', { class: `msg ${kind}` }, text);
    this.log.append(node);
    if (!quiet) this.announce(text);
    this.scroll();
    return node;
  }

  /** A finished answer (from the transcript, or a `resume_failed` that brings the final answer). */
  answer(r) {
    const view = this.streaming();
    view.finish(r, true);
    return view;
  }

  /** An answer that streams: `append` each chunk, then `finish` with the `response` frame. */
  streaming() {
    const text = el('span', { class: 'text' });
    const node = el('div', { class: 'msg assistant streaming', 'aria-busy': 'true' }, el('span', { class: 'author' }, 'Assistant'), text);
    this.log.append(node);
    this.scroll();
    const scroll = () => this.scroll();
    const announce = this.announce;
    return {
      node,
      /** Chunks in order; each one is its own DOM update, as it arrives. */
      append(content) {
        text.append(content);
        scroll();
      },
      get text() {
        return text.textContent;
      },
      set(content) {
        text.textContent = content;
      },
      reset() {
        text.textContent = '';
      },
      /** `quiet`: a transcript being drawn, not an answer arriving. */
      finish(r, quiet = false) {
        // The response is the whole answer: it replaces what streamed (the same text, unless chunks were lost).
        text.textContent = r.response ?? text.textContent;
        node.classList.remove('streaming');
        node.setAttribute('aria-busy', 'false');
        node.dataset.requestId = r.request_id ?? '';
        if (r.cached) node.dataset.cached = 'true';
        if (!quiet) announce(`Assistant${r.cached ? ' (cached)' : ''}: ${text.textContent}`);
        node.append(answerMeta(r));
        // Listed apart only when the answer's text does not already carry them.
        const shown = text.textContent;
        if (Array.isArray(r.suggestions) && r.suggestions.some((s) => !shown.includes(s))) {
          node.append(el('ul', { class: 'suggestions', 'aria-label': 'Suggestions' }, ...r.suggestions.map((s) => el('li', {}, s))));
        }
        scroll();
      },
      fail(message) {
        announce(message);
        node.classList.remove('streaming');
        node.setAttribute('aria-busy', 'false');
        node.append(el('div', { class: 'meta error' }, message));
      },
    };
  }
}
