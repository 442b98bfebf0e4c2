// The connection banner: says in plain words when the page lost the server, that
// values are frozen since then, and, once back, how long the gap was.

export function clock(ms) {
  return new Date(ms).toLocaleTimeString('en-GB', { hour12: false });
}

export function duration(ms) {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export class Banner {
  constructor(root, announce) {
    this.root = root;
    this.announce = announce;
    this.lostAt = null;
    this.everConnected = false;
    this.timer = null;
  }

  connected() {
    const now = Date.now();
    if (this.lostAt !== null) {
      const text = `Connection to the server restored at ${clock(now)} after ${duration(now - this.lostAt)} `
        + `(no values from ${clock(this.lostAt)} to ${clock(now)}). Values are live again.`;
      this.show('back', text);
      this.announce(text);
      this.lostAt = null;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => { if (this.lostAt === null) this.hide(); }, 30000);
    }
    this.everConnected = true;
  }

  lost(detail) {
    if (this.lostAt !== null) return;
    if (!this.everConnected) {
      this.show('lost', `Cannot reach the server${detail ? ` (${detail})` : ''}: no live values yet. Retrying…`);
      this.lostAt = Date.now();
      return;
    }
    this.lostAt = Date.now();
    const text = `Connection to the server lost at ${clock(this.lostAt)}: values are frozen since then and shown as stale. Reconnecting…`;
    clearTimeout(this.timer);
    this.show('lost', text);
    this.announce(text);
  }

  show(kind, text) {
    this.root.className = kind;
    this.root.replaceChildren(document.createTextNode(text));
    if (kind === 'back') {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = 'Dismiss';
      b.addEventListener('click', () => this.hide());
      this.root.append(b);
    }
    this.root.hidden = false;
    window.dispatchEvent(new Event('resize'));
  }

  hide() {
    this.root.hidden = true;
    window.dispatchEvent(new Event('resize'));
  }
}
