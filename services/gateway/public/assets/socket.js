// The assistant's WebSocket (`/ws/assistant/{session_id}`): reconnects on its own with backoff; the caller
// decides what to send after each (re)connection (a resume of the answer that was streaming).

/** Close codes after which reconnecting cannot help (refused membership, policy, or a normal close by us). */
const FINAL_CLOSE_CODES = new Set([1000, 4401, 4403, 1008]);
const BACKOFF_MS = [300, 1000, 2000, 4000, 8000];

export class AssistantSocket {
  /**
   * @param {string} url the upgrade URL (with `user_id` or `access_token`)
   * @param {{onFrame(frame: object): void, onOpen(): void, onDown(info: {code: number, reason: string, everOpened: boolean, final: boolean}): void}} handlers
   */
  constructor(url, handlers) {
    this.url = url;
    this.handlers = handlers;
    this.ws = undefined;
    this.attempt = 0;
    this.closed = false;
    this.timer = undefined;
    this.connect();
  }

  get open() {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  connect() {
    if (this.closed) return;
    let opened = false;
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.addEventListener('open', () => {
      opened = true;
      this.attempt = 0;
      this.handlers.onOpen();
    });
    ws.addEventListener('message', (ev) => {
      if (typeof ev.data !== 'string') return;
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (frame && typeof frame.type === 'string') this.handlers.onFrame(frame);
    });
    ws.addEventListener('close', (ev) => {
      if (this.ws !== ws) return;
      const final = this.closed || FINAL_CLOSE_CODES.has(ev.code);
      this.handlers.onDown({ code: ev.code, reason: ev.reason, everOpened: opened, final });
      if (!final) this.schedule();
    });
  }

  schedule() {
    const base = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt += 1;
    // Jitter, so that a restarted gateway is not met by every page at the same instant.
    this.timer = setTimeout(() => this.connect(), base / 2 + Math.random() * base);
  }

  /** Reconnect now (a network change, or the user asked). */
  reconnectNow() {
    clearTimeout(this.timer);
    if (this.open || this.closed) return;
    this.connect();
  }

  /** Sends one message; false when the socket is not open. */
  send(message) {
    if (!this.open) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    this.ws?.close(1000, 'page left the session');
  }
}
