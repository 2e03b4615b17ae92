// What the page keeps in the browser: the sessions used from it and their transcripts (localStorage, bounded),
// and the answer being streamed (sessionStorage: survives a reload of this tab, for resume).

const SESSIONS_MAX = 30;
const TRANSCRIPT_ENTRIES_MAX = 100;
/** Characters of one session's transcript at most (localStorage holds about 5 MB per origin). */
const TRANSCRIPT_CHARS_MAX = 100_000;
/** Characters of the partial answer kept for a resume. */
const INFLIGHT_TEXT_MAX = 64_000;
const INFLIGHT_KEY = 'axd.inflight';

const read = (storage, key, fallback) => {
  try {
    const v = JSON.parse(storage.getItem(key) ?? 'null');
    return v ?? fallback;
  } catch {
    return fallback;
  }
};
const write = (storage, key, value) => {
  try {
    storage.setItem(key, JSON.stringify(value));
  } catch {
    /* full or disabled: the page works on without it */
  }
};

export class SessionShelf {
  constructor(userKey) {
    this.key = `axd.sessions.${userKey}`;
    this.userKey = userKey;
  }

  /** Newest first: `{id, title, shared, join_token?, updated}`. */
  list() {
    return read(localStorage, this.key, []);
  }

  upsert(entry) {
    const rest = this.list().filter((s) => s.id !== entry.id);
    const old = this.list().find((s) => s.id === entry.id) ?? {};
    const merged = { ...old, ...entry, updated: Date.now() };
    const kept = [merged, ...rest].slice(0, SESSIONS_MAX);
    for (const dropped of [merged, ...rest].slice(SESSIONS_MAX)) localStorage.removeItem(this.transcriptKey(dropped.id));
    write(localStorage, this.key, kept);
    return merged;
  }

  /** Sessions the server knows (`GET /api/sessions`) and this browser does not: added after its own. */
  merge(known) {
    const list = this.list();
    const have = new Set(list.map((s) => s.id));
    const added = known
      .filter((k) => !have.has(k.session_id))
      .map((k) => ({ id: k.session_id, title: k.first_message.slice(0, 40) || 'Session', shared: false, updated: Date.parse(k.last_at) || 0 }));
    if (added.length > 0) write(localStorage, this.key, [...list, ...added].slice(0, SESSIONS_MAX));
  }

  get(id) {
    return this.list().find((s) => s.id === id);
  }

  transcriptKey(id) {
    return `axd.transcript.${this.userKey}.${id}`;
  }

  transcript(id) {
    return read(localStorage, this.transcriptKey(id), []);
  }

  /** Adds an entry `{role, text, author?, meta?}`; the oldest go when the bounds are passed. */
  record(id, entry) {
    const all = [...this.transcript(id), entry].slice(-TRANSCRIPT_ENTRIES_MAX);
    let chars = all.reduce((n, e) => n + (e.text?.length ?? 0), 0);
    while (all.length > 1 && chars > TRANSCRIPT_CHARS_MAX) chars -= all.shift().text?.length ?? 0;
    write(localStorage, this.transcriptKey(id), all);
  }
}

/** The answer streaming now, so that a reload (or a new socket) can ask for the rest. */
export const inflight = {
  load() {
    return read(sessionStorage, INFLIGHT_KEY, null);
  },
  save(entry) {
    write(sessionStorage, INFLIGHT_KEY, { ...entry, text: entry.text.slice(-INFLIGHT_TEXT_MAX) });
  },
  clear() {
    sessionStorage.removeItem(INFLIGHT_KEY);
  },
};
