// The page's entry: signs in (or not, in the open demo), then wires the sessions, the chat over the
// WebSocket, the jobs and, for administrators, the operator view.

import { Api, ApiError } from './api.js';
import { ChatView, el } from './chat-view.js';
import { JobsPanel } from './jobs.js';
import { OperatorView } from './ops.js';
import { AssistantSocket } from './socket.js';
import { SessionShelf, inflight } from './store.js';

const $ = (id) => document.getElementById(id);
const api = new Api();
const chat = new ChatView($('log'), $('announce'));
const jobs = new JobsPanel(api, document.querySelector('.jobs'));
const ops = new OperatorView(api, $('ops'));
const TYPING_IDLE_MS = 3_000;
const INFLIGHT_SAVE_MS = 200;
/** Chunks held while an earlier one is missing (a resume's replay catching up with the live frames). */
const EARLY_CHUNKS_MAX = 2_000;
const FINISHED_KEPT = 8;
/** How long a reconnected page waits for more of another member's answer before saying it missed its end. */
const FOLLOW_IDLE_MS = 10_000;
const isShared = () => state.shelf.get(state.sessionId)?.shared === true;
const SESSION_ID = /^[A-Za-z0-9_.:@-]{1,128}$/;

/** Everything about the session on screen. */
const state = {
  shelf: undefined,
  sessionId: undefined,
  socket: undefined,
  /**
   * The answer streaming now: `{view, request_id, last_seq, message, mine, early, following}`. `mine`: this
   * user's turn (the page resumes only its own answers); `early`: chunks past a gap, by seq; `following`: another
   * member's answer, picked up from the session's live frames after a reconnect.
   */
  current: undefined,
  /**
   * The answers last finished here: a frame of theirs that comes again is not a new answer. A member's socket
   * that resumes a shared session's turn gets its frames twice (the replay, and the session's live frames).
   */
  finished: [],
  /** A message sent and not yet started (its `turn` echo is ours, not another member's). */
  pendingMessage: undefined,
  /**
   * The session whose members a `presence` frame has shown: newer than the REST list asked for when the session
   * opened, which may answer after it (read before this socket counted) and must not replace it.
   */
  presenceOf: undefined,
  /** A resume was asked for this request id on this socket; its `error` means the server cannot resume. */
  resuming: undefined,
  typingSent: false,
  typingTimer: undefined,
  othersTyping: new Map(),
  savedAt: 0,
  saveTimer: undefined,
  /** Our user id when the credential does not name it (an API key), learnt from our own typing echo. */
  selfId: undefined,
  typingEchoDue: undefined,
  followTimer: undefined,
};

const randomId = (prefix) => `${prefix}-${Array.from(crypto.getRandomValues(new Uint8Array(6)), (b) => b.toString(16).padStart(2, '0')).join('')}`;

function setStatus(text, online) {
  const s = $('conn-status');
  s.textContent = text;
  s.classList.toggle('online', online === true);
  s.classList.toggle('offline', online === false);
}

function setBusy(busy) {
  $('send').disabled = busy;
  $('cancel').disabled = !busy;
}

// ------------------------------------------------------------------ sign-in

async function boot() {
  try {
    await api.detectAuthMode();
  } catch {
    setStatus('The gateway cannot be reached. Reload to try again.', false);
    return;
  }
  if (api.authMode === 'open') {
    const user = localStorage.getItem('axd.user') || randomId('guest');
    // Kept, so that a reload is the same user (its sessions, and the answer to resume).
    localStorage.setItem('axd.user', user);
    $('user-id').value = user;
    $('open-user').hidden = false;
    api.openUser = user;
    await start();
    return;
  }
  if (api.credential) {
    try {
      await api.checkCredential();
      await start();
      return;
    } catch {
      api.setCredential('');
    }
  }
  showSignIn();
}

function showSignIn(message = '') {
  stopSession();
  ops.stop();
  $('app').hidden = true;
  $('sign-out').hidden = true;
  $('who').textContent = '';
  $('sign-in').hidden = false;
  $('sign-in-error').textContent = message;
  setStatus('Signed out', false);
  $('credential').focus();
}

$('sign-in-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  api.setCredential($('credential').value);
  try {
    await api.checkCredential();
  } catch (err) {
    api.setCredential('');
    $('sign-in-error').textContent = err instanceof ApiError && err.status === 401 ? 'That key or token was refused.' : err.message;
    return;
  }
  $('credential').value = '';
  $('sign-in').hidden = true;
  await start();
});

$('sign-out').addEventListener('click', () => {
  api.setCredential('');
  inflight.clear();
  showSignIn();
});

$('open-user-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const user = $('user-id').value.trim();
  if (!SESSION_ID.test(user)) return;
  localStorage.setItem('axd.user', user);
  api.openUser = user;
  stopSession();
  await start();
});

async function start() {
  $('app').hidden = false;
  const me = api.userId();
  $('who').textContent = api.authMode === 'open' ? `open demo as ${me}` : me ? `signed in as ${me}` : 'signed in with an API key';
  $('sign-out').hidden = api.authMode === 'open';
  state.shelf = new SessionShelf(me ?? `key-${api.credential.slice(0, 12)}`);
  await loadSessions();
  const invite = parseInvite(location.hash);
  const resumable = inflight.load();
  if (invite) {
    history.replaceState(null, '', location.pathname);
    await join(invite.id, invite.token);
  } else if (resumable && state.shelf.get(resumable.session_id)) openSession(resumable.session_id);
  else openSession(state.shelf.list()[0]?.id ?? newSessionEntry().id);
  jobs.reset();
  void jobs.load();
  void ops.start();
}

// ------------------------------------------------------------------ sessions

function newSessionEntry(extra = {}) {
  return state.shelf.upsert({ id: randomId('s'), title: 'New session', shared: false, ...extra });
}

function renderSessions() {
  const items = state.shelf.list().map((s) => {
    const b = el('button', { type: 'button', 'data-session-id': s.id, 'aria-current': s.id === state.sessionId ? 'true' : 'false' }, s.title, s.shared ? ' (shared)' : '');
    b.addEventListener('click', () => openSession(s.id));
    return el('li', {}, b);
  });
  $('session-list').replaceChildren(...items);
}

/** This user's sessions as the server has them (any browser's), beside the ones this browser kept. */
async function loadSessions() {
  try {
    const r = await api.get(api.withUser('/api/sessions'));
    state.shelf.merge(r.sessions);
  } catch {
    /* an older gateway, or no worker: this browser's list */
  }
  renderSessions();
}

function stopSession() {
  state.socket?.close();
  state.socket = undefined;
  state.current = undefined;
  state.pendingMessage = undefined;
  state.resuming = undefined;
  setBusy(false);
}

function openSession(id) {
  stopSession();
  state.sessionId = id;
  state.presenceOf = undefined;
  const entry = state.shelf.get(id) ?? state.shelf.upsert({ id, title: 'Session', shared: false });
  $('session-name').textContent = `· ${entry.title}`;
  renderSessions();
  renderTranscript(state.shelf.transcript(id));
  // An answer that was streaming when the page was reloaded: show what came, ask for the rest once connected.
  const saved = inflight.load();
  if (saved && saved.session_id === id) {
    const view = chat.streaming();
    view.set(saved.text);
    state.current = { view, request_id: saved.request_id, last_seq: saved.last_seq, message: saved.message, mine: saved.mine !== false, early: new Map() };
    setBusy(true);
  }
  renderShare(entry);
  if (entry.shared) void loadMembers(id);
  else void loadHistory(id);
  setStatus('Connecting…');
  state.socket = new AssistantSocket(api.socketUrl(id), { onOpen, onFrame, onDown });
}

function renderTranscript(entries) {
  chat.clear();
  $('log').dataset.history = 'local';
  for (const t of entries) {
    if (t.role === 'user') chat.user(t.text, t.author);
    else if (t.role === 'assistant') chat.answer({ ...t.meta, response: t.text });
    else chat.system(t.text, 'system', true);
  }
}

/**
 * The session's turns as the server has them (`GET /api/sessions/{id}/history`: this user's, from any device),
 * in place of this browser's copy, unless an answer is on screen being streamed. A shared session keeps the
 * browser's copy, which has the other members' turns too.
 */
async function loadHistory(id) {
  let history;
  try {
    history = await api.get(api.withUser(`/api/sessions/${encodeURIComponent(id)}/history?limit=50`));
  } catch {
    return; // an older gateway, or no worker: the browser's copy stays
  }
  if (state.sessionId !== id || state.current || state.pendingMessage !== undefined || history.turns.length === 0) return;
  const entries = history.turns.flatMap((t) => [
    { role: 'user', text: t.message },
    { role: 'assistant', text: t.response, meta: t },
  ]);
  renderTranscript(entries);
  $('log').dataset.history = 'server';
}

function renderShare(entry) {
  $('share-box').hidden = !entry.shared;
  if (entry.shared && entry.join_token) {
    $('share-link').value = `${location.origin}/#join=${encodeURIComponent(entry.id)}&token=${encodeURIComponent(entry.join_token)}`;
  } else $('share-link').value = '';
  $('members').replaceChildren();
}

function renderMembers(members) {
  const me = api.userId();
  $('members').replaceChildren(
    ...members.map((m) =>
      el('li', { class: m.online ? 'online' : '' }, `${m.user_id}${m.user_id === me ? ' (you)' : ''}${m.role === 'owner' ? ' · owner' : ''} · ${m.online ? 'online' : 'offline'}`),
    ),
  );
}

async function loadMembers(id) {
  try {
    const r = await api.get(api.withUser(`/api/sessions/${encodeURIComponent(id)}/members`));
    if (state.sessionId === id && state.presenceOf !== id) renderMembers(r.members);
  } catch {
    /* presence frames fill it in when they come */
  }
}

const sessionsNote = (text) => ($('sessions-note').textContent = text);
const collabMissing = (err) =>
  err instanceof ApiError && (err.status === 404 || err.status === 405) && err.code !== 'not_a_member'
    ? 'Shared sessions are not available on this server.'
    : err.message;

$('new-session').addEventListener('click', () => openSession(newSessionEntry().id));

$('new-shared').addEventListener('click', async () => {
  sessionsNote('');
  try {
    const r = await api.post(api.withUser('/api/sessions'), { title: 'Shared session', mode: $('mode').value });
    state.shelf.upsert({ id: r.session_id, title: 'Shared session', shared: true, join_token: r.join_token });
    openSession(r.session_id);
    renderMembers(r.members ?? []);
  } catch (err) {
    sessionsNote(collabMissing(err));
  }
});

/** `…#join=<id>&token=<t>`, or `<id> <token>`. */
function parseInvite(text) {
  const hash = text.includes('#') ? text.slice(text.indexOf('#') + 1) : '';
  if (hash) {
    const q = new URLSearchParams(hash);
    if (q.get('join') && q.get('token')) return { id: q.get('join'), token: q.get('token') };
    return undefined;
  }
  const [id, token] = text.trim().split(/\s+/);
  return id && token ? { id, token } : undefined;
}

async function join(id, token) {
  sessionsNote('');
  if (!SESSION_ID.test(id)) return sessionsNote('That invitation names no valid session.');
  try {
    await api.post(api.withUser(`/api/sessions/${encodeURIComponent(id)}/join`), { join_token: token });
    state.shelf.upsert({ id, title: 'Shared session', shared: true, join_token: token });
    openSession(id);
  } catch (err) {
    sessionsNote(collabMissing(err));
  }
}

$('join-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const invite = parseInvite($('join-invite').value);
  if (!invite) return sessionsNote('Paste the link, or the session id and the token separated by a space.');
  $('join-invite').value = '';
  void join(invite.id, invite.token);
});

// ------------------------------------------------------------------ the socket

function onOpen() {
  setStatus('Connected', true);
}

function onDown({ everOpened, final, code }) {
  if (code === 4403) {
    setStatus('Not a member of this session', false);
    chat.system('You are not a member of this session (ask its owner for an invitation).', 'error');
    state.current?.view.fail('Not a member.');
    return;
  }
  setStatus(final ? 'Disconnected' : 'Connection lost: reconnecting…', false);
  if (state.pendingMessage !== undefined && !state.current?.request_id) {
    // Sent, but no answer had started: nothing to resume. The user sends it again.
    chat.system('The connection was lost before the answer started: send your message again.', 'error');
    state.pendingMessage = undefined;
    state.current = undefined;
    setBusy(false);
  }
  const entry = state.shelf.get(state.sessionId);
  if (!everOpened && entry?.shared) {
    // A refused upgrade shows no reason to a page: a shared session's member list says whether we are one.
    const id = state.sessionId;
    api.get(api.withUser(`/api/sessions/${encodeURIComponent(id)}/members`)).catch((err) => {
      if (state.sessionId !== id || !(err instanceof ApiError) || (err.code !== 'not_a_member' && err.status !== 403)) return;
      state.socket?.close();
      setStatus('Not a member of this session', false);
      chat.system('You are not a member of this session (ask its owner for an invitation).', 'error');
    });
  }
  if (!everOpened && api.authMode !== 'open') {
    // A refused upgrade shows no reason to a page: ask the REST API whether the credential still holds.
    api.checkCredential().catch((err) => {
      if (err instanceof ApiError && err.status === 401) showSignIn('Your key or token is no longer accepted: sign in again.');
    });
  }
}

function send(message) {
  return state.socket?.send(message) ?? false;
}

/** Keeps the streaming answer for a resume: at most every INFLIGHT_SAVE_MS, the last chunk always saved. */
function saveInflight(force = false) {
  const c = state.current;
  if (!c?.request_id) return;
  const now = Date.now();
  clearTimeout(state.saveTimer);
  if (!force && now - state.savedAt < INFLIGHT_SAVE_MS) {
    state.saveTimer = setTimeout(() => saveInflight(true), INFLIGHT_SAVE_MS);
    return;
  }
  state.savedAt = now;
  inflight.save({ session_id: state.sessionId, request_id: c.request_id, last_seq: c.last_seq, text: c.view.text, message: c.message, mine: c.mine });
}

function record(entry) {
  if (state.sessionId) state.shelf.record(state.sessionId, entry);
}

function endTurn() {
  clearTimeout(state.saveTimer);
  clearTimeout(state.followTimer);
  const id = state.current?.request_id;
  if (id) state.finished = [id, ...state.finished.filter((f) => f !== id)].slice(0, FINISHED_KEPT);
  state.current = undefined;
  state.resuming = undefined;
  inflight.clear();
  setBusy(false);
}

const FRAMES = {
  connected(f) {
    setStatus('Connected', true);
    if (f.mode) $('mode').value = f.mode;
    const c = state.current;
    if (c?.request_id && c.mine) {
      // After a reconnect or a reload: the rest of the answer, from the last chunk we have.
      state.resuming = c.request_id;
      send({ type: 'resume', request_id: c.request_id, last_seq: c.last_seq });
    } else if (c) {
      // Another member's answer (not resumed: the page follows it): the rest comes with the session's live frames,
      // unless it ended while we were away.
      c.following = true;
      clearTimeout(state.followTimer);
      state.followTimer = setTimeout(() => {
        if (state.current !== c || !c.following) return;
        c.view.fail("This answer ended while the page was away: its end was not received here (it was another member's turn).");
        endTurn();
      }, FOLLOW_IDLE_MS);
    }
  },
  stream_start(f) {
    if (state.finished.includes(f.request_id)) return;
    if (!state.current || (state.current.request_id && state.current.request_id !== f.request_id)) {
      const mine = state.pendingMessage !== undefined || !isShared();
      state.current = { view: chat.streaming(), request_id: f.request_id, last_seq: -1, message: state.pendingMessage ?? '', mine, early: new Map() };
    }
    state.current.request_id = f.request_id;
    state.pendingMessage = undefined;
    setBusy(true);
    saveInflight(true);
  },
  stream_chunk(f) {
    if (!state.current) {
      // The rest of an answer that just ended here (the same frames from a second source): not a new one.
      if (state.finished.length > 0 && typeof f.seq === 'number' && f.seq > 0) return;
      // A shared session joined mid-answer: its chunks from here on.
      state.current = { view: chat.streaming(), request_id: undefined, last_seq: typeof f.seq === 'number' ? f.seq - 1 : -1, message: '', mine: !isShared(), early: new Map() };
    }
    const c = state.current;
    if (c.following) {
      // Live again after a gap that nobody will fill (another member's answer): marked, and the response
      // brings the whole text.
      c.following = false;
      clearTimeout(state.followTimer);
      if (typeof f.seq === 'number' && f.seq > c.last_seq + 1) {
        c.view.append(' … ');
        c.last_seq = f.seq - 1;
      }
    }
    if (typeof f.seq !== 'number') {
      c.view.append(f.content);
      c.last_seq += 1;
    } else if (f.seq <= c.last_seq) {
      return; // already shown (a replay)
    } else if (f.seq > c.last_seq + 1) {
      // One before it is missing (still on its way in a resume's replay): held until it comes.
      if (c.early.size < EARLY_CHUNKS_MAX) c.early.set(f.seq, f.content);
      return;
    } else {
      c.view.append(f.content);
      c.last_seq = f.seq;
      for (let next = c.early.get(c.last_seq + 1); next !== undefined; next = c.early.get(c.last_seq + 1)) {
        c.early.delete(c.last_seq + 1);
        c.view.append(next);
        c.last_seq += 1;
      }
      for (const seq of c.early.keys()) if (seq <= c.last_seq) c.early.delete(seq);
    }
    saveInflight();
  },
  stream_reset() {
    if (!state.current) return;
    state.current.view.reset();
    state.current.last_seq = -1;
    state.current.early.clear();
  },
  stream_end() {},
  response(f) {
    if (state.finished.includes(f.request_id)) return;
    const view = state.current?.view ?? chat.streaming();
    const meta = { ...f, resumed: state.resuming !== undefined };
    view.finish(meta);
    record({ role: 'assistant', text: f.response, meta: strip(meta) });
    if (state.shelf.get(state.sessionId)?.title === 'New session' && state.current?.message) {
      state.shelf.upsert({ id: state.sessionId, title: state.current.message.slice(0, 40) });
      renderSessions();
    }
    endTurn();
  },
  resume_failed(f) {
    const view = state.current?.view ?? chat.streaming();
    if (f.response) {
      const meta = { ...f.response, resumed: true };
      view.finish(meta);
      record({ role: 'assistant', text: f.response.response, meta: strip(meta) });
    } else {
      view.fail(f.code === 'resume_expired' ? 'The rest of this answer is no longer kept: ask again.' : `The answer could not be resumed (${f.code}).`);
    }
    endTurn();
  },
  error(f) {
    if (state.resuming !== undefined && f.code === 'unknown_message_type') {
      state.current?.view.fail('The connection was lost mid-answer and this server cannot resume it: ask again.');
      endTurn();
      return;
    }
    if (f.code === 'session_busy') {
      chat.system("Another member's turn is being answered: send yours when it ends.");
      state.pendingMessage = undefined;
      if (!state.current) setBusy(false);
      return;
    }
    if (state.current || state.pendingMessage !== undefined) {
      const view = state.current?.view ?? chat.streaming();
      view.fail(f.code === 'cancelled' ? 'Stopped.' : `${f.message} (${f.code})`);
      state.pendingMessage = undefined;
      endTurn();
      return;
    }
    chat.system(`${f.message} (${f.code})`, 'error');
  },
  system(f) {
    chat.system(f.message);
    if (f.mode) $('mode').value = f.mode;
  },
  typing(f) {
    // An API key does not say whose it is: the echo of our own typing does (in a session of our own only).
    if (api.userId() === null && !state.shelf.get(state.sessionId)?.shared && state.typingEchoDue !== undefined && Date.now() < state.typingEchoDue && f.is_typing) {
      state.selfId = f.user_id;
      state.typingEchoDue = undefined;
    }
    const me = api.userId() ?? state.selfId;
    if (f.user_id === null || f.user_id === me) return;
    clearTimeout(state.othersTyping.get(f.user_id));
    if (f.is_typing) state.othersTyping.set(f.user_id, setTimeout(() => FRAMES.typing({ ...f, is_typing: false }), TYPING_IDLE_MS * 2));
    else state.othersTyping.delete(f.user_id);
    const names = [...state.othersTyping.keys()];
    $('typing').textContent = names.length === 0 ? '' : `${names.join(', ')} ${names.length === 1 ? 'is' : 'are'} typing…`;
  },
  turn(f) {
    // Our own turn comes back to us too: it is on screen already.
    if (state.pendingMessage !== undefined && f.message === state.pendingMessage) return;
    if (f.user_id === (api.userId() ?? state.selfId) && state.pendingMessage === undefined && state.current) return;
    chat.user(f.message, f.user_id);
    record({ role: 'user', text: f.message, author: f.user_id });
    state.current = { view: chat.streaming(), request_id: f.request_id, last_seq: -1, message: f.message, mine: false, early: new Map() };
    setBusy(true);
  },
  presence(f) {
    if (f.session_id !== state.sessionId) return;
    state.presenceOf = f.session_id;
    renderMembers(f.members ?? []);
  },
  job_progress: (f) => jobs.onEvent(f),
  job_done: (f) => jobs.onEvent(f),
  job_failed: (f) => jobs.onEvent(f),
  pong() {},
};

/** What the transcript keeps of a response frame. */
const strip = (r) => ({ cached: r.cached, model: r.model, cost_usd: r.cost_usd, usage: r.usage, latency_ms: r.latency_ms, mode: r.mode, task_type: r.task_type, request_id: r.request_id, suggestions: r.suggestions, resumed: r.resumed });

function onFrame(frame) {
  FRAMES[frame.type]?.(frame);
}

// ------------------------------------------------------------------ the composer

$('chat-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const message = $('message').value.trim();
  if (!message || state.current || state.pendingMessage !== undefined) return;
  const turn = { message, mode: $('mode').value, task_type: $('task-type').value, use_cache: $('use-cache').checked };
  if (!send(turn)) {
    chat.system('Not connected: the message was not sent. It will be possible again once reconnected.', 'error');
    state.socket?.reconnectNow();
    return;
  }
  stopTyping();
  chat.user(message);
  record({ role: 'user', text: message });
  state.pendingMessage = message;
  $('message').value = '';
  setBusy(true);
});

$('message').addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    $('chat-form').requestSubmit();
  }
});

function stopTyping() {
  clearTimeout(state.typingTimer);
  if (state.typingSent) send({ type: 'typing', is_typing: false });
  state.typingSent = false;
}

$('message').addEventListener('input', () => {
  if (!state.typingSent) {
    state.typingSent = send({ type: 'typing', is_typing: true });
    if (state.typingSent && state.selfId === undefined) state.typingEchoDue = Date.now() + 1_000;
  }
  clearTimeout(state.typingTimer);
  state.typingTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
});

$('cancel').addEventListener('click', () => send({ type: 'cancel' }));

$('mode').addEventListener('change', () => send({ type: 'mode_switch', mode: $('mode').value }));

window.addEventListener('online', () => state.socket?.reconnectNow());
// An invitation link opened in a tab where the page already runs.
window.addEventListener('hashchange', () => {
  const invite = parseInvite(location.hash);
  if (!invite || !state.shelf) return;
  history.replaceState(null, '', location.pathname);
  void join(invite.id, invite.token);
});
// A reload or a closed tab mid-answer: what came so far, for the resume after it.
window.addEventListener('pagehide', () => saveInflight(true));

void boot();
