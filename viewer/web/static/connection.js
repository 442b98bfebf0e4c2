// The live link to the twinview bridge: snapshot, deltas, commands; reconnects by itself.
//
// Signing in: the page sends the access token once, in an Authorization header, to
// POST /session; the server answers with an HttpOnly cookie (a session id, never the
// token) that every websocket handshake then carries. The token is never in a URL
// and never kept by the page. Only a bridge on another origin (an export-xr bundle)
// gets the token as the first websocket message, from memory.
// A reconnect gets a fresh snapshot from the server, so nothing is replayed.

export function bridgeUrl(loc = window.location) {
  const given = new URLSearchParams(loc.search).get('bridge');
  if (given) return given;
  return (loc.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + loc.host + '/ws';
}

const ANSWER_MS = 2000; // a heartbeat ping unanswered this long: the link is lost

export class Connection {
  constructor(url, handlers) {
    this.url = url;
    this.handlers = handlers; // { message(msg), status(connected, detail) }
    this.token = null;
    this.ws = null;
    this.connected = false;
    this.retry = 500;
    this.closedByUs = false;
    this.received = 0;
    this.refs = 0;
    this.lastMessage = 0;
    this.pingAt = null;
    // Heartbeat: a link quiet for a second is pinged; a ping unanswered for ANSWER_MS
    // means the link is lost.
    setInterval(() => this.heartbeat(), 500);
  }

  heartbeat() {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const now = Date.now();
    const waiting = this.pingAt !== null && this.lastMessage < this.pingAt;
    if (waiting && now - this.pingAt > ANSWER_MS) {
      // a ping went unanswered: a server that hangs or a network that drops sends no close
      this.ws = null;
      this.connected = false;
      try { ws.close(4000, 'no answer'); } catch (err) { /* already closing */ }
      this.handlers.status(false, 'the server stopped answering');
      setTimeout(() => { if (!this.closedByUs && this.ws === null) this.open(); }, 250);
    } else if (!waiting && now - this.lastMessage > 900) {
      // only a sent ping counts: timers in a background tab run late, and lateness is not silence
      this.pingAt = now;
      this.send({ type: 'ping', ref: 'hb' });
    }
  }

  open() {
    this.closedByUs = false;
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      this.handlers.status(false, String(err));
      return;
    }
    this.ws = ws;
    ws.addEventListener('open', () => {
      if (ws !== this.ws) return;
      this.connected = true;
      this.retry = 500;
      this.lastMessage = Date.now();
      this.pingAt = null;
      if (this.token) ws.send(JSON.stringify({ type: 'auth', token: this.token }));
      this.handlers.status(true, '');
    });
    ws.addEventListener('message', (event) => {
      if (ws !== this.ws) return;
      this.received += 1;
      this.lastMessage = Date.now();
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch (err) {
        console.warn('twinview: unreadable message from the bridge', err);
        return;
      }
      this.handlers.message(msg);
    });
    ws.addEventListener('close', (event) => {
      if (ws !== this.ws) return;
      this.connected = false;
      this.handlers.status(false, event.reason || `closed (${event.code})`);
      if (!this.closedByUs) {
        setTimeout(() => { if (!this.closedByUs && this.ws === ws) this.open(); }, this.retry);
        this.retry = Math.min(this.retry * 2, 2000);
      }
    });
  }

  /** Sign in with `token` (null: sign out), then reconnect. Resolves to {ok, message}. */
  async login(token) {
    const session = sessionUrl(this.url);
    if (!session) { // a bridge on another origin: the token goes as the first message
      this.token = token || null;
      this.reconnect();
      return { ok: true, message: '' };
    }
    this.token = null;
    let result = { ok: true, message: '' };
    try {
      const response = await fetch(session, {
        method: token ? 'POST' : 'DELETE',
        headers: token ? { Authorization: `Bearer ${token}` } : {},
        credentials: 'same-origin',
        cache: 'no-store',
      });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        result = { ok: false, message: body.error || `sign-in failed (HTTP ${response.status})` };
      }
    } catch (err) {
      result = { ok: false, message: `sign-in failed: ${err.message || err}` };
    }
    if (!result.ok) {
      this.handlers.message({ type: 'error', code: 'auth_failed', message: result.message });
      return result;
    }
    this.reconnect();
    return result;
  }

  reconnect() {
    const old = this.ws;
    this.ws = null;
    if (old) { try { old.close(1000, 'reconnecting'); } catch (err) { /* already closed */ } }
    this.open();
  }

  close() {
    this.closedByUs = true;
    if (this.ws) this.ws.close(1000, 'bye');
  }

  send(msg) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
    return true;
  }

  command(device, command, args, confirmed) {
    const ref = `c${++this.refs}`;
    const ok = this.send({ type: 'command', device, command, args: args || {}, confirmed: !!confirmed, ref });
    return ok ? ref : null;
  }
}

/** The bridge's session endpoint when the bridge is this page's own server, else null. */
export function sessionUrl(url, loc = window.location) {
  try {
    const u = new URL(url, loc.href);
    const http = u.protocol === 'wss:' ? 'https:' : u.protocol === 'ws:' ? 'http:' : null;
    return http === loc.protocol && u.host === loc.host ? `${http}//${u.host}/session` : null;
  } catch (err) {
    return null;
  }
}
