// The desktop inspector: the selected device's live values (quality in words and
// colour, age always shown), a trend of the chosen point, its commands (arguments
// that start at the current value with unit and range, checked before sending; a
// visible countdown on confirmations; disabled with the reason when they cannot
// be sent) and its command log (every user's commands, kept across reopening).
import { age, argPoint, formatValue, initialArg, ROLE_RANK } from './format.js';
import { renderLog } from './commandlog.js';
import { KIND_WORD, kindsOf, mainKind, reason } from './status.js';

const $ = (id) => document.getElementById(id);
export const CONFIRM_SECONDS = 5;

function el(tag, attrs = {}, text = '') {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

/** Why an argument value cannot be sent, or '' when it can. */
export function argProblem(arg, value, unit = '') {
  if (arg.kind !== 'number') return '';
  if (value === '' || value === null || !Number.isFinite(Number(value))) return 'enter a number';
  const x = Number(value);
  const u = unit ? ` ${unit}` : '';
  if (arg.min !== null && x < arg.min) return `below the minimum ${arg.min}${u}`;
  if (arg.max !== null && x > arg.max) return `above the maximum ${arg.max}${u}`;
  return '';
}

export class SidePanel {
  constructor({ onCommand, onClose, log, trend, context }) {
    this.onCommand = onCommand; // (device, command, args, confirmed) -> ref
    this.log = log;
    this.trend = trend;
    this.context = context; // () => { connected, role, user, actuation }
    this.visual = null;
    this.chartPoint = null;
    this.forms = [];
    $('panel-close').addEventListener('click', () => onClose());
    setInterval(() => this.tickAges(), 1000);
  }

  show(visual) {
    const same = visual && this.visual === visual;
    this.visual = visual;
    $('panel').hidden = !visual;
    if (!visual) { this.trend.show(null, null); this.disarmAll(); return; }
    if (same) { this.refresh(); return; }
    const info = visual.info;
    $('panel-title').textContent = `${info.id} · ${info.name}`;
    $('panel-sub').textContent = [info.type, info.area].filter(Boolean).join(' · ');
    const numeric = info.points.filter((p) => p.kind !== 'enum' && p.kind !== 'bool');
    const labelled = info.points.find((p) => info.label_points.includes(p.id) && p.kind !== 'enum');
    this.chartPoint = (labelled || numeric[0] || info.points[0] || null);
    this.buildCommands(info);
    this.refresh();
    this.trend.show(info.id, this.chartPoint);
    this.renderLog();
    window.dispatchEvent(new Event('resize'));
  }

  /** Redraw values, state line and command availability (the selected device changed, or the link). */
  refresh() {
    const v = this.visual;
    if (!v) return;
    const { connected } = this.context();
    const entry = v.entry;
    const kinds = kindsOf(entry, connected);
    const main = mainKind(kinds);
    const state = $('panel-state');
    state.className = `why ${main}`;
    state.textContent = main === 'ok' ? 'All values current' : [...kinds].map((k) => (k === 'alarm' ? `ALARM: ${reason(v.info, entry, 'alarm')}` : KIND_WORD[k])).join(' · ')
      + (connected ? '' : ' — no connection to the server');
    const body = $('panel-points').querySelector('tbody');
    body.replaceChildren();
    const points = (entry && entry.points) || {};
    for (const p of v.info.points) {
      const rec = points[p.id] || { v: null, q: 'no data', t: null, a: false };
      const q = connected ? rec.q : (rec.q === 'good' ? 'stale' : rec.q);
      const row = el('tr', { 'data-point': p.id, tabindex: '0', title: 'Show its trend' });
      if (this.chartPoint && this.chartPoint.id === p.id) row.className = 'chosen';
      row.append(el('td', {}, p.label || p.id));
      row.append(el('td', { class: 'value' }, formatValue(p, rec.v)));
      const qc = el('td', { class: 'qcell' });
      qc.append(el('span', { class: `q q-${String(q).replace(' ', '-')}` }, q));
      if (rec.a) { qc.append(' '); qc.append(el('span', { class: 'q q-alarm' }, 'ALARM')); }
      qc.append(el('span', { class: 'age', 'data-ts': rec.t === null || rec.t === undefined ? '' : String(rec.t) }, rec.t ? age(rec.t) : ''));
      row.append(qc);
      const choose = () => { this.chartPoint = p; this.trend.show(v.info.id, p); this.refresh(); };
      row.addEventListener('click', choose);
      row.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); choose(); } });
      body.append(row);
    }
    this.refreshCommands();
  }

  tickAges() {
    for (const td of document.querySelectorAll('#panel-points .age')) {
      const ts = td.dataset.ts;
      if (ts) td.textContent = age(Number(ts));
    }
    if (this.trend.point) this.trend.draw();
  }

  /** Why commands cannot be sent now ('' when they can), for one required role. */
  blocked(role) {
    const { connected, role: mine, actuation, past } = this.context();
    if (!connected) return 'No connection to the server';
    if (past) return 'Showing the past: press Live to send commands';
    if (actuation === false) return 'This server is read-only';
    if (!mine) return 'Log in to send commands';
    if ((ROLE_RANK[mine] ?? -1) < (ROLE_RANK[role] ?? 1)) return `Needs the ${role} role (you are ${mine})`;
    return '';
  }

  buildCommands(info) {
    this.disarmAll();
    const box = $('panel-commands');
    box.replaceChildren();
    this.forms = [];
    for (const cmd of info.commands) {
      const label = cmd.label || cmd.name;
      const div = el('div', { class: 'cmd', 'data-command': cmd.name });
      const row = el('div', { class: 'row' });
      const inputs = [];
      for (const a of cmd.args) {
        const point = argPoint(info, a);
        const unit = point && point.unit ? point.unit : '';
        const wrap = el('label');
        const name = a.name.replace(/_/g, ' ');
        let input;
        if (a.kind === 'enum') {
          input = el('select', { name: a.name });
          for (const s of a.states) input.append(el('option', { value: s }, s));
          if (a.default !== null) input.value = a.default;
        } else if (a.kind === 'bool') {
          input = el('input', { type: 'checkbox', name: a.name });
          input.checked = !!a.default;
        } else {
          input = el('input', { type: 'number', name: a.name, step: 'any', inputmode: 'decimal', required: '' });
          if (a.min !== null) input.min = a.min;
          if (a.max !== null) input.max = a.max;
        }
        const range = a.kind === 'number' && (a.min !== null || a.max !== null) ? `${a.min ?? ''}–${a.max ?? ''}${unit ? ' ' + unit : ''}` : unit;
        wrap.append(el('span', {}, name), input);
        if (range) wrap.append(el('span', { class: 'note' }, range));
        input.setAttribute('aria-label', `${label}: ${name}${range ? ` (${range})` : ''}`);
        const field = { input, arg: a, point, unit, touched: false };
        input.addEventListener('input', () => { field.touched = true; this.validate(form); });
        inputs.push(field);
        row.append(wrap);
      }
      const button = el('button', { type: 'button', class: cmd.confirm ? 'danger' : '' }, label);
      const cancel = el('button', { type: 'button', hidden: '' }, 'Cancel');
      row.append(button, cancel);
      const err = el('div', { class: 'err', role: 'alert' });
      const desired = el('div', { class: 'desired' });
      const notes = [];
      if (cmd.role && cmd.role !== 'viewer') notes.push(`needs ${cmd.role}`);
      if (cmd.confirm) notes.push('asks to confirm');
      if (cmd.interlock) notes.push(`interlock: ${cmd.interlock}`);
      div.append(row, err, desired);
      if (notes.length) div.append(el('div', { class: 'note' }, notes.join(' · ')));
      const form = { cmd, label, div, button, cancel, err, desired, inputs, armed: null };
      button.addEventListener('click', () => this.press(form));
      cancel.addEventListener('click', () => this.disarm(form));
      box.append(div);
      this.forms.push(form);
    }
    if (!info.commands.length) box.append(el('p', { class: 'note' }, 'This device has no commands.'));
    this.prefill(true);
  }

  /** Start inputs where the desktop does (format.initialArg: default, else the reported value), until edited. */
  prefill(force = false) {
    const entry = this.visual && this.visual.entry;
    const points = (entry && entry.points) || {};
    for (const form of this.forms) {
      for (const f of form.inputs) {
        if ((f.touched && !force) || document.activeElement === f.input) continue;
        const a = f.arg;
        const start = initialArg({ ...a, from_point: a.from_point || (f.point && f.point.id) }, points);
        if (a.kind === 'number') f.input.value = typeof start === 'number' ? String(Math.round(start * 100) / 100) : '';
        else if (a.kind === 'enum' && start !== null) f.input.value = start;
        else if (a.kind === 'bool' && start !== null && !f.touched) f.input.checked = !!start;
      }
    }
  }

  values(form) {
    const args = {};
    for (const { input, arg } of form.inputs) {
      args[arg.name] = arg.kind === 'bool' ? input.checked : arg.kind === 'number' ? Number(input.value) : input.value;
    }
    return args;
  }

  validate(form) {
    const problems = [];
    for (const f of form.inputs) {
      const why = argProblem(f.arg, f.input.value, f.unit);
      f.input.classList.toggle('invalid', !!why);
      f.input.setAttribute('aria-invalid', String(!!why));
      if (why) problems.push(`${f.arg.name.replace(/_/g, ' ')}: ${why}`);
    }
    form.err.textContent = problems.length ? `Not sent: ${problems.join('; ')}` : '';
    return problems.length === 0;
  }

  press(form) {
    if (this.blocked(form.cmd.role)) return;
    if (!this.validate(form)) { form.inputs.find((f) => f.input.classList.contains('invalid')).input.focus(); return; }
    const args = this.values(form);
    if (form.cmd.confirm && !form.armed) { this.arm(form, args); return; }
    const confirmed = !!form.armed;
    this.disarm(form);
    this.onCommand(this.visual.info.id, form.cmd.name, args, confirmed);
    for (const f of form.inputs) f.touched = false;
  }

  arm(form, args) {
    let left = CONFIRM_SECONDS;
    const argText = Object.entries(args).map(([k, v]) => `${k} ${v}`).join(', ');
    const text = () => `Confirm ${form.label}${argText ? ` (${argText})` : ''}? ${left} s`;
    form.armed = { timer: null };
    form.button.textContent = text();
    form.button.classList.add('armed');
    form.cancel.hidden = false;
    form.armed.timer = setInterval(() => {
      left -= 1;
      if (left <= 0) { this.disarm(form); form.err.textContent = `${form.label} not sent: not confirmed within ${CONFIRM_SECONDS} s`; return; }
      form.button.textContent = text();
    }, 1000);
  }

  disarm(form) {
    if (form.armed) clearInterval(form.armed.timer);
    form.armed = null;
    form.button.textContent = form.label;
    form.button.classList.remove('armed');
    form.cancel.hidden = true;
  }

  disarmAll() { for (const f of this.forms || []) this.disarm(f); }

  refreshCommands() {
    const info = this.visual && this.visual.info;
    if (!info) return;
    this.prefill(false);
    let why = '';
    const pending = this.log.pending(info.id);
    const points = (this.visual.entry && this.visual.entry.points) || {};
    for (const form of this.forms) {
      const blocked = this.blocked(form.cmd.role);
      why = why || blocked;
      form.button.disabled = !!blocked;
      form.button.title = blocked || '';
      for (const f of form.inputs) f.input.disabled = !!blocked;
      if (blocked) this.disarm(form);
      // desired vs reported while a command is pending
      if (pending && pending.command === form.cmd.name) {
        const parts = Object.entries(pending.args || {}).map(([k, v]) => {
          const p = info.points.find((x) => x.id === k);
          const rep = p && points[k] ? formatValue(p, points[k].v) : null;
          return `${k}: desired ${formatValue(p, v)}${rep !== null ? `, reported ${rep}` : ''}`;
        });
        form.desired.textContent = `${pending.state}…${parts.length ? ' ' + parts.join('; ') : ''}`;
      } else form.desired.textContent = '';
    }
    const w = $('panel-why');
    w.hidden = !why;
    w.textContent = why ? `${why}.` : '';
  }

  renderLog() {
    const v = this.visual;
    if (!v) return;
    const labelOf = (name) => { const c = v.info.commands.find((x) => x.name === name); return c ? c.label || c.name : name; };
    renderLog($('panel-log'), this.log.records(v.info.id), labelOf);
    this.refreshCommands();
  }
}
