// Background jobs: submit, list, and a progress bar per job fed by its event stream (SSE over fetch) and by
// the events the WebSocket pushes; events are applied in `seq` order, each once.

import { ApiError, readEventStream } from './api.js';
import { el } from './chat-view.js';

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
const JOBS_SHOWN = 20;

export class JobsPanel {
  constructor(api, root) {
    this.api = api;
    this.form = root.querySelector('#job-form');
    this.list = root.querySelector('#job-list');
    this.error = root.querySelector('#job-error');
    /** id → {view, seq, node parts, abort} */
    this.jobs = new Map();
    this.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      void this.submit();
    });
  }

  /** Forgets the jobs on screen (another user signed in) and stops following them. */
  reset() {
    for (const entry of this.jobs.values()) entry.abort?.abort();
    this.jobs.clear();
    this.list.replaceChildren();
    this.say(undefined);
  }

  async load() {
    try {
      const page = await this.api.get(this.api.withUser(`/api/jobs?limit=${JOBS_SHOWN}`));
      for (const job of [...page.jobs].reverse()) this.show(job);
    } catch (err) {
      this.say(err);
    }
  }

  say(err) {
    if (err instanceof ApiError && err.code === 'jobs_unavailable') this.error.textContent = 'Background jobs are not enabled on this server (it needs QUEUE_REDIS_URL).';
    else this.error.textContent = err ? `${err.message}` : '';
  }

  async submit() {
    this.say(undefined);
    const data = new FormData(this.form);
    const kind = data.get('kind');
    const raw = String(data.get('input') ?? '');
    const title = String(data.get('title') ?? '').trim() || undefined;
    const input =
      kind === 'batch_alignment'
        ? { items: raw.split('\n').map((t) => t.trim()).filter(Boolean).map((text) => ({ text })), title }
        : { document: raw, title };
    const body = { kind, input };
    if (this.api.authMode === 'open') body.user_id = this.api.openUser;
    try {
      const job = await this.api.post('/api/jobs', body);
      this.show(job);
      this.form.reset();
    } catch (err) {
      this.say(err);
    }
  }

  /** Adds or refreshes a job's row, and follows its events until it ends. */
  show(job) {
    let entry = this.jobs.get(job.id);
    if (!entry) {
      const progress = el('progress', { max: '100', value: '0', 'aria-label': `Progress of job ${job.title ?? job.id}` });
      const state = el('span', { class: 'job-state' });
      const cancel = el('button', { type: 'button', class: 'secondary' }, 'Cancel');
      const summary = el('div', { class: 'job-summary' });
      const node = el(
        'li',
        { 'data-job-id': job.id },
        el('div', { class: 'job-head' }, el('strong', {}, job.title ?? job.kind), state, cancel),
        progress,
        summary,
      );
      cancel.addEventListener('click', () => void this.cancel(job.id));
      this.list.prepend(node);
      entry = { node, progress, state, cancel, summary, seq: 0, job, abort: undefined };
      this.jobs.set(job.id, entry);
      while (this.list.children.length > JOBS_SHOWN) {
        const last = this.list.lastElementChild;
        this.jobs.get(last.dataset.jobId)?.abort?.abort();
        this.jobs.delete(last.dataset.jobId);
        last.remove();
      }
    }
    entry.job = job;
    this.render(entry, job.state, job.progress.percent, job.progress.message);
    if (job.state === 'completed' && job.result !== undefined) this.renderResult(entry, job);
    if (!TERMINAL.has(job.state) && !entry.abort) void this.follow(entry);
  }

  render(entry, state, percent, message) {
    entry.node.dataset.state = state;
    entry.progress.value = percent;
    entry.progress.textContent = `${percent} %`;
    entry.state.textContent = `${state} · ${percent} %${message ? ` · ${message}` : ''}`;
    entry.cancel.hidden = TERMINAL.has(state);
  }

  renderResult(entry, job) {
    const r = job.result;
    const cost = typeof job.cost_usd === 'number' ? ` · cost $${job.cost_usd.toFixed(6)}` : '';
    entry.summary.textContent = `${r?.summary ?? `${r?.parts?.length ?? 0} parts done`}${cost}`;
  }

  /** An event from the SSE stream or the WebSocket; older or repeated ones are ignored. */
  onEvent(e) {
    const entry = this.jobs.get(e.job_id);
    if (!entry || e.seq <= entry.seq) return;
    entry.seq = e.seq;
    if (e.type === 'job_progress') this.render(entry, e.state, e.percent, e.message);
    else if (e.type === 'job_done') {
      this.render(entry, 'completed', 100, 'done');
      entry.summary.textContent = `${e.summary ?? 'done'} · cost $${e.cost_usd.toFixed(6)}`;
      entry.abort?.abort();
    } else if (e.type === 'job_failed') {
      this.render(entry, e.state, Number(entry.progress.value), e.error?.message ?? '');
      entry.abort?.abort();
    }
  }

  async follow(entry) {
    const abort = new AbortController();
    entry.abort = abort;
    for (let attempt = 0; attempt < 5 && !abort.signal.aborted; attempt++) {
      try {
        await readEventStream(this.api, this.api.withUser(`/api/jobs/${encodeURIComponent(entry.job.id)}/events`), {
          signal: abort.signal,
          lastEventId: entry.seq,
          onEvent: (_name, data) => this.onEvent(data),
        });
        return;
      } catch (err) {
        if (abort.signal.aborted) return;
        if (err instanceof ApiError && err.status > 0 && err.status < 500) return;
        await new Promise((r) => setTimeout(r, 1000 * (attempt + 1)));
      }
    }
  }

  async cancel(id) {
    try {
      await this.api.delete(this.api.withUser(`/api/jobs/${encodeURIComponent(id)}`));
    } catch (err) {
      this.say(err);
    }
  }
}
