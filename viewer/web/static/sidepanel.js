// The desktop inspector: an HTML side panel with the selected device's live values
// and its commands (arguments as inputs, a second click to confirm when required).
import { age, commandStateText, formatValue, initialArg } from './format.js';

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, text = '') {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

export class SidePanel {
  constructor(onCommand, onClose) {
    this.onCommand = onCommand; // (device, command, args, confirmed) -> ref
    this.visual = null;
    this.log = [];
    $('panel-close').addEventListener('click', () => onClose());
  }

  show(visual) {
    this.visual = visual;
    this.log = [];
    $('panel').hidden = !visual;
    if (!visual) return;
    const info = visual.info;
    $('panel-title').textContent = info.name;
    $('panel-sub').textContent = [info.id, info.type, info.area].filter(Boolean).join(' · ');
    this.buildCommands(info, (visual.entry && visual.entry.points) || {});
    this.refresh();
    this.renderLog();
  }

  /** Redraw the values (called when the selected device changes state). */
  refresh() {
    const v = this.visual;
    if (!v) return;
    const body = $('panel-points').querySelector('tbody');
    body.replaceChildren();
    const points = (v.entry && v.entry.points) || {};
    for (const p of v.info.points) {
      const rec = points[p.id] || { v: null, q: 'no data', t: null, a: false };
      const row = el('tr', { 'data-point': p.id });
      row.append(el('td', {}, p.label || p.id));
      row.append(el('td', { class: 'value' }, formatValue(p, rec.v)));
      const q = el('td', { class: `q-${String(rec.q).replace(' ', '-')}` }, rec.a ? `${rec.q}, ALARM` : rec.q);
      q.title = rec.t ? age(rec.t) : '';
      row.append(q);
      body.append(row);
    }
  }

  buildCommands(info, points = {}) {
    const box = $('panel-commands');
    box.replaceChildren();
    for (const cmd of info.commands) {
      const div = el('div', { class: 'cmd', 'data-command': cmd.name });
      const inputs = {};
      for (const a of cmd.args) {
        let input;
        if (a.kind === 'enum') {
          input = el('select', { name: a.name });
          for (const s of a.states) input.append(el('option', { value: s }, s));
          const start = initialArg(a, points);
          if (start !== null) input.value = start;
        } else if (a.kind === 'bool') {
          input = el('input', { type: 'checkbox', name: a.name });
          input.checked = !!a.default;
        } else {
          input = el('input', { type: 'number', name: a.name, step: 'any' });
          if (a.min !== null) input.min = a.min;
          if (a.max !== null) input.max = a.max;
          const start = initialArg(a, points);  // the device's reported value, never a silent 0
          input.value = start !== null ? start : '';
          input.required = true;
        }
        input.title = a.name;
        inputs[a.name] = { input, arg: a };
        div.append(input);
      }
      const button = el('button', { type: 'button', class: cmd.confirm ? 'danger' : '' }, cmd.label || cmd.name);
      let armed = false;
      button.addEventListener('click', () => {
        const args = {};
        for (const [name, { input, arg }] of Object.entries(inputs)) {
          args[name] = arg.kind === 'bool' ? input.checked : arg.kind === 'number' ? Number(input.value) : input.value;
        }
        if (cmd.confirm && !armed) {
          armed = true;
          button.textContent = `Confirm ${cmd.label || cmd.name}?`;
          setTimeout(() => { armed = false; button.textContent = cmd.label || cmd.name; }, 5000);
          return;
        }
        armed = false;
        button.textContent = cmd.label || cmd.name;
        this.onCommand(info.id, cmd.name, args, cmd.confirm);
      });
      div.append(button);
      const notes = [];
      if (cmd.role !== 'viewer') notes.push(`needs ${cmd.role}`);
      if (cmd.interlock) notes.push(`interlock: ${cmd.interlock}`);
      if (notes.length) div.append(el('div', { class: 'note' }, notes.join(' · ')));
      box.append(div);
    }
  }

  addLog(state) {
    this.log.unshift(commandStateText(state));
    this.log = this.log.slice(0, 8);
    this.renderLog();
  }

  renderLog() {
    const list = $('panel-log');
    list.replaceChildren(...this.log.map((t) => el('li', {}, t)));
  }
}
