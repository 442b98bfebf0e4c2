// Every command the page hears of, from this user or any other, kept per device for
// as long as the page is open: one line per command (its latest state), with the
// time, the user, the arguments and the outcome. Reopening a device shows it again.
import { clock } from './banner.js';
import { FINAL_COMMAND_STATES } from './vocabulary.js';

const PER_DEVICE = 50;
const FINAL = new Set([...FINAL_COMMAND_STATES, 'not sent']);

export class CommandLog {
  constructor() {
    this.byDevice = new Map(); // device -> Map(key -> record)
    this.byRef = new Map(); // our ref -> key
  }

  records(device) {
    const m = this.byDevice.get(device);
    return m ? [...m.values()].sort((a, b) => b.time - a.time) : [];
  }

  /** A command state from the server (any page's command). Returns the record. */
  state(s) {
    if (!s.device) return null;
    let key = s.id ? `id:${s.id}` : null;
    if (s.ref && this.byRef.has(s.ref)) {
      const refKey = this.byRef.get(s.ref);
      if (key && refKey !== key) this.rekey(s.device, refKey, key); else key = refKey;
    }
    if (!key) key = `ref:${s.ref || Math.random()}`;
    const rec = this.put(s.device, key, {
      id: s.id || null, command: s.command, args: s.args, user: s.user, state: s.display || s.state,
      reason: s.reason || '', final: s.final !== undefined ? !!s.final : FINAL.has(s.state),
      time: s.updated ? s.updated * 1000 : Date.now(),
    });
    if (s.ref) this.byRef.set(s.ref, key);
    return rec;
  }

  /** A device's past commands from the audit log: fills in what the page did not see (never overrides). */
  past(device, entries) {
    let added = 0;
    for (const e of entries || []) {
      if (!e.id) continue;
      const m = this.byDevice.get(device);
      if (m && m.has(`id:${e.id}`)) continue;
      this.state({ ...e, device });
      added += 1;
    }
    return added;
  }

  /** The server's first answer to one of our commands: links our ref to its id; a refusal is final. */
  result(msg) {
    if (!msg.device) return null;
    const m = this.byDevice.get(msg.device);
    const idKey = msg.id ? `id:${msg.id}` : null;
    const have = idKey && m && m.get(idKey);
    if (msg.ok && have) {
      const refKey = this.byRef.get(msg.ref);
      if (refKey && refKey !== idKey) this.rekey(msg.device, refKey, idKey);
      this.byRef.set(msg.ref, idKey);
      return have;
    }
    return this.state({ ...msg, final: !msg.ok });
  }

  /** A command this page sent (or could not send): shown at once, replaced by the server's states. */
  local(device, command, args, user, ref, state, reason = '') {
    const key = ref ? `ref:${ref}` : `local:${Date.now()}:${Math.random()}`;
    if (ref) this.byRef.set(ref, key);
    return this.put(device, key, { id: null, command, args, user, state, reason, final: FINAL.has(state), time: Date.now() });
  }

  rekey(device, from, to) {
    const m = this.byDevice.get(device);
    if (!m || !m.has(from)) return;
    const rec = m.get(from);
    m.delete(from);
    if (!m.has(to)) m.set(to, rec);
    for (const [ref, key] of this.byRef) if (key === from) this.byRef.set(ref, to);
  }

  put(device, key, fields) {
    if (!this.byDevice.has(device)) this.byDevice.set(device, new Map());
    const m = this.byDevice.get(device);
    const old = m.get(key) || {};
    const rec = { ...old, ...Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined && v !== null && v !== '')) };
    if (!old.user && !rec.user) rec.user = '';
    rec.final = fields.final;
    rec.state = fields.state || old.state;
    rec.reason = fields.reason || (fields.final ? old.reason || '' : '');
    m.set(key, rec);
    if (m.size > PER_DEVICE) m.delete(m.keys().next().value);
    return rec;
  }

  /** The newest command of a device that has not finished (desired vs reported), or null. */
  pending(device) {
    return this.records(device).find((r) => !r.final) || null;
  }
}

export function argsText(args) {
  if (!args) return '';
  const parts = Object.entries(args).map(([k, v]) => `${k}=${v}`);
  return parts.length ? ` (${parts.join(', ')})` : '';
}

/** Fill an <ol> with a device's records: time, user, command, outcome. */
export function renderLog(list, records, labelOf) {
  const items = records.map((r) => {
    const li = document.createElement('li');
    const t = document.createElement('time');
    t.dateTime = new Date(r.time).toISOString();
    t.textContent = clock(r.time);
    const body = document.createElement('span');
    const who = r.user ? `${r.user}: ` : '';
    body.append(document.createTextNode(`${who}${labelOf(r.command)}${argsText(r.args)} — `));
    const st = document.createElement('strong');
    st.className = `st-${String(r.state).replace(/\s+/g, '-')}`;
    st.textContent = r.state;
    body.append(st);
    if (r.reason) body.append(document.createTextNode(`: ${r.reason}`));
    li.append(t, body);
    li.dataset.state = r.state;
    return li;
  });
  if (!items.length) {
    const li = document.createElement('li');
    li.textContent = 'No commands yet.';
    items.push(li);
  }
  list.replaceChildren(...items);
}
