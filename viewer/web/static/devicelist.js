// The device list: every device grouped by area and type, a search over id, name,
// type and area, and a filter by status kind (the top bar's counts open it).
// Each device is a button: the list is one Tab stop, arrow keys move in it, Enter selects.
import { KIND_WORDS, reason } from './status.js';

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

export class DeviceList {
  constructor(devices, { tree, search, filter, filterText, filterClear, onSelect }) {
    this.devices = devices; // site.json device entries
    this.byId = new Map(devices.map((d) => [d.id, d]));
    this.tree = tree;
    this.search = search;
    this.filterBox = filter;
    this.filterText = filterText;
    this.onSelect = onSelect;
    this.kind = null;
    this.status = new Map(); // id -> { kinds:Set, main, why }
    this.items = new Map(); // id -> button
    this.current = null;
    search.addEventListener('input', () => {
      clearTimeout(this.typing);
      if (devices.length > 300) this.typing = setTimeout(() => this.render(), 150); else this.render();
    });
    search.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') { clearTimeout(this.typing); this.render(); const first = this.visible()[0]; if (first) this.onSelect(first.id); }
      if (e.key === 'ArrowDown') { clearTimeout(this.typing); this.render(); const b = this.tree.querySelector('button.dev'); if (b) { b.focus(); e.preventDefault(); } }
    });
    filterClear.addEventListener('click', () => this.setKind(null));
    tree.addEventListener('keydown', (e) => this.arrows(e));
    this.render();
  }

  setStatus(id, kinds, main, why) {
    this.status.set(id, { kinds, main, why });
    const b = this.items.get(id);
    if (b) this.paint(b, id);
  }

  setKind(kind) {
    this.kind = kind;
    if (this.onKind) this.onKind(kind);
    this.render();
  }

  setCurrent(id) {
    this.current = id;
    const stop = this.items.get(id) || this.items.values().next().value;
    for (const [k, b] of this.items) { b.setAttribute('aria-current', String(k === id)); b.tabIndex = b === stop ? 0 : -1; }
    const b = this.items.get(id);
    if (b) b.scrollIntoView({ block: 'nearest' });
  }

  matches(d, words) {
    const hay = `${d.id} ${d.name} ${d.type} ${d.area}`.toLowerCase();
    return words.every((w) => hay.includes(w));
  }

  visible() {
    const words = this.search.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    return this.devices.filter((d) => {
      if (this.kind) { const s = this.status.get(d.id); if (!s || !s.kinds.has(this.kind)) return false; }
      return this.matches(d, words);
    });
  }

  render() {
    const shown = this.visible();
    this.items.clear();
    const frag = document.createDocumentFragment();
    const byArea = new Map();
    for (const d of shown) {
      const area = d.area || 'Other';
      if (!byArea.has(area)) byArea.set(area, new Map());
      const types = byArea.get(area);
      if (!types.has(d.type)) types.set(d.type, []);
      types.get(d.type).push(d);
    }
    for (const [area, types] of byArea) {
      const group = el('div', 'group');
      group.setAttribute('role', 'group');
      group.setAttribute('aria-label', area);
      group.append(el('div', 'area', area));
      for (const [type, list] of types) {
        if (types.size > 1 || list.length > 3) group.append(el('div', 'type', `${type} (${list.length})`));
        for (const d of list) {
          const b = el('button', 'dev');
          b.type = 'button';
          b.dataset.device = d.id;
          b.append(el('span', 'dot'), el('span', 'tag', d.id), el('span', 'name', d.name), el('span', 'why'));
          b.setAttribute('aria-current', String(d.id === this.current));
          b.addEventListener('click', () => this.onSelect(d.id));
          this.items.set(d.id, b);
          this.paint(b, d.id);
          group.append(b);
        }
      }
      frag.append(group);
    }
    // one Tab stop for the whole list (the current device, else the first); arrow keys move inside
    const stop = this.items.get(this.current) || this.items.values().next().value;
    for (const b of this.items.values()) b.tabIndex = b === stop ? 0 : -1;
    if (!shown.length) frag.append(el('p', 'area', this.kind ? `No devices: ${KIND_WORDS[this.kind].toLowerCase()}` : 'No device matches'));
    this.tree.replaceChildren(frag);
    this.filterBox.hidden = !this.kind;
    if (this.kind) this.filterText.textContent = `${KIND_WORDS[this.kind]}: ${shown.length} device${shown.length === 1 ? '' : 's'}`;
  }

  paint(button, id) {
    const s = this.status.get(id);
    const main = s ? s.main : 'nodata';
    button.querySelector('.dot').className = `dot ${main}`;
    const why = button.querySelector('.why');
    const showKind = this.kind || main;
    why.className = `why ${showKind}`;
    why.textContent = s && showKind !== 'ok' ? (this.kind ? s.why(this.kind) : s.why(main)) : '';
    const d = this.byId.get(id);
    button.setAttribute('aria-label', `${id} ${d ? d.name : ''}${why.textContent ? ', ' + why.textContent : ''}`);
  }

  arrows(e) {
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
    const buttons = [...this.tree.querySelectorAll('button.dev')];
    const i = buttons.indexOf(document.activeElement);
    if (i < 0) return;
    const next = buttons[i + (e.key === 'ArrowDown' ? 1 : -1)];
    if (next) { buttons[i].tabIndex = -1; next.tabIndex = 0; next.focus(); } else if (e.key === 'ArrowUp') this.search.focus();
    e.preventDefault();
  }
}

export { reason };
