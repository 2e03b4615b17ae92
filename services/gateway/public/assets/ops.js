// The operator view (administrators): cache figures and invalidation, breakers, queue depth, connections,
// read from the platform's own admin APIs (/api/cache/*, /api/metrics, /api/websocket/stats, /api/health).

import { el } from './chat-view.js';

const REFRESH_MS = 5_000;

/** Samples of the named families in Prometheus text: `[{name, labels, value}]`. */
export function parseMetrics(text, names) {
  const wanted = new Set(names);
  const out = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || !wanted.has(m[1])) continue;
    const labels = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v;
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

const figures = (dl, pairs) => dl.replaceChildren(...pairs.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, String(v))]));

export class OperatorView {
  constructor(api, root) {
    this.api = api;
    this.root = root;
    this.$ = (id) => root.querySelector(`#${id}`);
    this.timer = undefined;
    this.$('ops-refresh').addEventListener('click', () => void this.refresh());
    this.$('ops-auto').addEventListener('change', () => this.schedule());
    this.$('invalidate-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      void this.invalidate();
    });
  }

  /** Shows the view when the credential is an administrator's (the cache stats answer 200). */
  async start() {
    try {
      await this.api.get('/api/cache/stats');
    } catch {
      this.root.hidden = true;
      return false;
    }
    this.root.hidden = false;
    await this.refresh();
    this.schedule();
    return true;
  }

  stop() {
    clearTimeout(this.timer);
    this.root.hidden = true;
  }

  schedule() {
    clearTimeout(this.timer);
    if (this.$('ops-auto').checked && !this.root.hidden) this.timer = setTimeout(() => void this.refresh().then(() => this.schedule()), REFRESH_MS);
  }

  async refresh() {
    const errors = [];
    const [stats, health, sockets, metrics, cacheHealth, breakers] = await Promise.allSettled([
      this.api.get('/api/cache/stats'),
      this.api.get('/api/health'),
      this.api.get('/api/websocket/stats'),
      this.api.metricsText(),
      this.api.get('/api/cache/health'),
      this.api.get('/api/admin/breakers'),
    ]);
    if (stats.status === 'fulfilled') {
      const s = stats.value;
      const ch = cacheHealth.status === 'fulfilled' ? cacheHealth.value : undefined;
      figures(this.$('ops-cache'), [
        ['status', s.status],
        ['backend', s.backend],
        ['hits', s.hits],
        ['misses', s.misses],
        ['coalesced', s.coalesced],
        ['hit rate', `${(s.hit_rate * 100).toFixed(1)} %`],
        ['keys', s.total_keys],
        ...Object.entries(s.keys_by_task_type).map(([t, n]) => [`  ${t}`, n]),
        ['memory', s.memory_used_bytes === null ? '—' : `${(s.memory_used_bytes / 1024).toFixed(0)} KiB`],
        ...(ch ? [['health', `${ch.status}${ch.latency_ms === null ? '' : ` (${ch.latency_ms} ms)`}`]] : []),
      ]);
    } else errors.push(`cache: ${stats.reason.message}`);

    if (metrics.status === 'fulfilled') {
      this.renderMetrics(metrics.value, cacheHealth.status === 'fulfilled' ? cacheHealth.value : undefined, breakers.status === 'fulfilled' ? breakers.value : undefined);
    }
    else errors.push(`metrics: ${metrics.reason.message}`);

    if (sockets.status === 'fulfilled') {
      const w = sockets.value;
      figures(this.$('ops-connections'), [
        ['live WebSockets (this gateway)', w.active_connections],
        ['opened since start', w.total_connections],
        ['messages in / out', `${w.messages_in} / ${w.messages_out}`],
        ['streaming now', w.sessions.filter((s) => s.streaming).length],
        ['errors', w.errors],
      ]);
    } else errors.push(`connections: ${sockets.reason.message}`);

    if (health.status === 'fulfilled') {
      const h = health.value;
      this.$('ops-health').replaceChildren(
        el('li', {}, `overall: ${h.status}`),
        ...Object.entries(h.dependencies ?? {}).map(([name, d]) => el('li', {}, `${name}: ${d?.status ?? '?'}${typeof d?.latency_ms === 'number' ? ` (${d.latency_ms} ms)` : ''}`)),
      );
    } else errors.push(`health: ${health.reason.message}`);

    this.$('ops-error').textContent = errors.join(' · ');
    this.$('ops-updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
  }

  /** `workerBreakers`: `GET /api/admin/breakers` (one orchestrator's view), else this process's metrics. */
  renderMetrics(text, cacheHealth, workerBreakers) {
    const samples = parseMetrics(text, ['ai_target_breaker_state', 'cache_breaker_open', 'jobs_queue_depth', 'chat_queue_jobs', 'websocket_active_connections', 'ai_requests_in_flight']);
    const breakers = [];
    const stateClass = { open: 'state-open', half_open: 'state-half', closed: 'state-closed' };
    const targets = workerBreakers
      ? Object.entries(workerBreakers.model_targets)
      : samples.filter((x) => x.name === 'ai_target_breaker_state').map((s) => [s.labels.target, s.value === 2 ? 'open' : s.value === 1 ? 'half_open' : 'closed']);
    for (const [target, state] of targets) {
      breakers.push(el('li', {}, `model target ${target}: `, el('span', { class: stateClass[state] ?? '' }, state.replace('_', ' '))));
    }
    if (workerBreakers && targets.length > 0) breakers.push(el('li', { class: 'note' }, '(as one orchestrator sees them: each replica keeps its own)'));
    // The cache's breaker as a worker reports it (any replica answers), else as this process's metrics show it.
    const cacheBreaker = cacheHealth?.breaker ?? samples.filter((x) => x.name === 'cache_breaker_open').map((s) => (s.value > 0 ? 'open' : 'closed'))[0];
    if (cacheBreaker !== undefined) {
      const cls = cacheBreaker === 'open' ? 'state-open' : cacheBreaker === 'half_open' ? 'state-half' : 'state-closed';
      breakers.push(el('li', {}, `cache (${cacheHealth?.backend ?? 'store'}): `, el('span', { class: cls }, cacheBreaker.replace('_', ' '))));
    }
    if (breakers.length === 0) breakers.push(el('li', { class: 'note' }, 'No breaker reported here: in the distributed mode each orchestrator reports its own (Grafana, "Resilience").'));
    this.$('ops-breakers').replaceChildren(...breakers);

    const queues = [];
    for (const s of samples.filter((x) => x.name === 'jobs_queue_depth')) queues.push([`${s.labels.queue ?? 'jobs'} ${s.labels.state}`, s.value]);
    for (const s of samples.filter((x) => x.name === 'chat_queue_jobs')) queues.push([`chat queue ${s.labels.state}`, s.value]);
    for (const s of samples.filter((x) => x.name === 'ai_requests_in_flight')) queues.push(['model calls in flight', s.value]);
    if (queues.length === 0) queues.push(['queues', 'none reported']);
    figures(this.$('ops-queues'), queues);
  }

  async invalidate() {
    const pattern = this.$('inv-pattern').value.trim();
    const task = this.$('inv-task').value;
    const q = new URLSearchParams();
    if (pattern) q.set('pattern', pattern);
    if (task) q.set('task_type', task);
    const out = this.$('inv-result');
    try {
      const r = await this.api.post(`/api/cache/invalidate?${q}`);
      out.textContent = `Deleted ${r.deleted ?? JSON.stringify(r)} cached answers.`;
      await this.refresh();
    } catch (err) {
      out.textContent = `Not done: ${err.message}`;
    }
  }
}
