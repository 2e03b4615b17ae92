// The platform's REST API from the page: one place that adds the credential and turns errors into ApiError.

const CREDENTIAL_KEY = 'axd.credential';

/** A failed call: the gateway's `{error: {code, message}}`, or a network failure (`code: 'network'`). */
export class ApiError extends Error {
  constructor(status, code, message, retryable = false) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryable = retryable;
  }
}

export class Api {
  constructor() {
    /** JWT or API key; kept in this tab only (sessionStorage), never in localStorage. */
    this.credential = sessionStorage.getItem(CREDENTIAL_KEY) ?? '';
    /** `open` (the demo: no sign-in, the user id is named) or `required`. */
    this.authMode = 'required';
    /** In open mode, the user id the page names in its calls. */
    this.openUser = '';
  }

  setCredential(value) {
    this.credential = value.trim();
    if (this.credential) sessionStorage.setItem(CREDENTIAL_KEY, this.credential);
    else sessionStorage.removeItem(CREDENTIAL_KEY);
  }

  /** Who the page acts as: the open demo's name, a JWT's `sub`, or `null` for an API key (the server knows). */
  userId() {
    if (this.authMode === 'open') return this.openUser;
    return jwtSubject(this.credential);
  }

  headers(extra = {}) {
    const h = { accept: 'application/json', ...extra };
    if (this.authMode !== 'open' && this.credential) h.authorization = `Bearer ${this.credential}`;
    return h;
  }

  /** `path` with `user_id` added in the open demo (with a credential the server takes the user from it). */
  withUser(path) {
    if (this.authMode !== 'open' || !this.openUser) return path;
    return `${path}${path.includes('?') ? '&' : '?'}user_id=${encodeURIComponent(this.openUser)}`;
  }

  /** Fetch JSON; throws ApiError for anything but 2xx. */
  async call(method, path, body, { signal } = {}) {
    let res;
    try {
      res = await fetch(path, {
        method,
        headers: this.headers(body === undefined ? {} : { 'content-type': 'application/json' }),
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
        cache: 'no-store',
      });
    } catch (err) {
      if (err?.name === 'AbortError') throw err;
      throw new ApiError(0, 'network', 'The gateway cannot be reached.', true);
    }
    const text = await res.text();
    let data;
    try {
      data = text ? JSON.parse(text) : undefined;
    } catch {
      data = text;
    }
    if (!res.ok) {
      const e = data && typeof data === 'object' ? data.error : undefined;
      throw new ApiError(res.status, e?.code ?? `http_${res.status}`, e?.message ?? `HTTP ${res.status}`, e?.retryable ?? res.status >= 500);
    }
    return data;
  }

  get(path, opts) {
    return this.call('GET', path, undefined, opts);
  }

  post(path, body, opts) {
    return this.call('POST', path, body ?? {}, opts);
  }

  delete(path) {
    return this.call('DELETE', path);
  }

  /** Prometheus text (administrators). */
  async metricsText() {
    const res = await fetch('/api/metrics', { headers: this.headers({ accept: 'text/plain' }), cache: 'no-store' });
    if (!res.ok) throw new ApiError(res.status, `http_${res.status}`, `metrics: HTTP ${res.status}`);
    return res.text();
  }

  /**
   * Whether the gateway wants a credential: a call that needs an identity answers 401 when it does.
   * `/api/websocket/stats` is cheap, has no side effect and answers the open demo without a user; where it is
   * not routed (a Kubernetes Ingress routes the user-facing paths only), `/api/sessions` tells.
   */
  async detectAuthMode() {
    const probe = (path) => fetch(path, { headers: { accept: 'application/json' }, cache: 'no-store' });
    let res = await probe('/api/websocket/stats');
    if (res.status !== 401 && !res.ok) res = await probe('/api/sessions?limit=1');
    this.authMode = res.status === 401 ? 'required' : 'open';
    return this.authMode;
  }

  /** Whether the credential is accepted: anything but a 401 on a user's route (a 503 is not the credential's fault). */
  async checkCredential() {
    let res;
    try {
      res = await fetch('/api/sessions?limit=1', { headers: this.headers(), cache: 'no-store' });
    } catch {
      throw new ApiError(0, 'network', 'The gateway cannot be reached.', true);
    }
    if (res.status === 401) throw new ApiError(401, 'unauthorized', 'That key or token was refused.');
  }

  /** URL of the session's WebSocket, with the credential as `access_token` (browsers cannot set headers). */
  socketUrl(sessionId) {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const q = new URLSearchParams();
    if (this.authMode === 'open') q.set('user_id', this.openUser);
    else if (this.credential) q.set('access_token', this.credential);
    return `${scheme}://${location.host}/ws/assistant/${encodeURIComponent(sessionId)}?${q}`;
  }
}

/** The `sub` of a JWT (not verified: the server does that), or null for anything else (an API key). */
export function jwtSubject(token) {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const json = atob(parts[1].replace(/-/g, '+').replace(/_/g, '/'));
    const claims = JSON.parse(json);
    return typeof claims.sub === 'string' ? claims.sub : null;
  } catch {
    return null;
  }
}

/**
 * Server-Sent Events over fetch (EventSource cannot send Authorization): calls `onEvent(name, data, id)` for
 * each event until the stream ends or `signal` aborts. Resolves when the server closes the stream.
 */
export async function readEventStream(api, path, { signal, lastEventId, onEvent }) {
  const headers = api.headers({ accept: 'text/event-stream' });
  if (lastEventId !== undefined) headers['last-event-id'] = String(lastEventId);
  const res = await fetch(path, { headers, signal, cache: 'no-store' });
  if (!res.ok || !res.body) throw new ApiError(res.status, `http_${res.status}`, `events: HTTP ${res.status}`, res.status >= 500);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let end;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      let name = 'message';
      let id;
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') name = val;
        else if (field === 'data') data.push(val);
        else if (field === 'id') id = val;
      }
      if (data.length === 0) continue;
      let parsed;
      try {
        parsed = JSON.parse(data.join('\n'));
      } catch {
        continue;
      }
      onEvent(name, parsed, id);
    }
  }
}
