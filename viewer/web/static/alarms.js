// The alarm list of the page and of the headset, and the area badges in the scene.
//
// The bridge sends {"type": "alarms", "kind": "snapshot" | "changes", alarms, floods, areas}:
// a snapshot replaces the list, changes are merged (an alarm back to "normal" leaves it).
// Actions go back as {"type": "alarm_action", action: "ack" | "shelve" | "unshelve", alarm,
// seconds, reason}; the server acts as the connection's signed-in principal (the alarm engine
// checks the role and audits) and answers {"type": "alarm_result", ok, reason}.
//
// On a screen: a button in the top bar opens a list, filterable by severity, state and area,
// sorted by severity then time; a row's device name selects and frames the device. In the
// scene, an area with active alarms carries a badge while the camera is zoomed out. In a
// headset: the same list on a canvas panel beside the device panel, with Ack and Shelve
// buttons hit by the controller ray, and the badges over the (scaled) site.
import * as THREE from 'three';
import { roundRect } from './labels.js';
import { ALARM_STATES, SEVERITIES } from './vocabulary.js';

const SEVERITY_COLORS = { critical: '#d01c1c', high: '#e8590c', medium: '#c99a00', low: '#1c7ed6' };
const UNACK = new Set([ALARM_STATES.UNACKNOWLEDGED, ALARM_STATES.RETURNED_UNACKNOWLEDGED]);
const SHELVE_SECONDS = 3600;
const PW = 900;
const PH = 640;
const PANEL_WIDTH = 0.84; // metres
const ROWS_3D = 6;
const WINDOWS = [['any time', 0], ['last hour', 3600], ['last 24 h', 86400], ['last 7 days', 7 * 86400]];
const SORT_KEYS = {
  time: (a) => a.activated_at || 0, severity: (a) => a.priority, state: (a) => a.state, area: (a) => a.area || '',
  device: (a) => a.device, alarm: (a) => a.name, value: (a) => String(a.value),
};

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function when(t) {
  if (!t) return '-';
  const d = new Date(t * 1000);
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

function valueText(v) {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toPrecision(4).replace(/\.?0+$/, '');
  return v === null || v === undefined ? '-' : String(v);
}

export class Alarms {
  /** send(msg) -> bool; select(deviceId); role() -> the signed-in role or null. */
  constructor({ send, select, role }) {
    this.send = send;
    this.select = select;
    this.role = role;
    this.list = new Map(); // id -> alarm
    this.floods = [];
    this.areas = {}; // area -> active alarm count
    this.results = [];
    this.refs = 0;
    this.filter = { severity: '', state: '', area: '', window: 0 };
    this.sort = { key: '', desc: true }; // '' : severity, then newest first
    this.badges = new Map(); // area -> { sprite, canvas, texture, text }
    this.badgeRoot = new THREE.Group();
    this.badgeRoot.name = 'alarm badges';
    this.zoomedOut = true;
    this.panel = new AlarmPanel3D(this);
    this.dom = null;
  }

  // --- messages -----------------------------------------------------------------------

  /** Handle a bridge message; true when it was about alarms. */
  handle(msg) {
    if (msg.type === 'alarms') {
      if (msg.kind === 'snapshot') this.list.clear();
      for (const a of msg.alarms || []) {
        if (a.state === ALARM_STATES.NORMAL) this.list.delete(a.id); else this.list.set(a.id, a);
      }
      this.floods = msg.floods || [];
      this.areas = msg.areas || {};
      this.refresh();
      return true;
    }
    if (msg.type === 'alarm_result') {
      this.results.push(msg);
      this.status = msg.ok ? `${msg.alarm}: ${msg.action === 'ack' ? 'acknowledged' : msg.action + 'd'}`
        : `${msg.alarm}: refused: ${msg.reason}`;
      this.refresh();
      return true;
    }
    return false;
  }

  act(action, alarm, extra = {}) {
    const ref = `a${++this.refs}`;
    const ok = this.send({ type: 'alarm_action', action, alarm, ref, ...extra });
    this.status = ok ? `${alarm}: ${action} requested` : `${alarm}: not sent (offline)`;
    this.refresh();
    return ok ? ref : null;
  }

  ack(id) { return this.act('ack', id); }

  shelve(id, seconds = SHELVE_SECONDS, reason = 'shelved from the web page') {
    return this.act('shelve', id, { seconds, reason });
  }

  unshelve(id) { return this.act('unshelve', id); }

  /** Alarms as the list shows them: filtered, worst first, newest first. */
  rows() {
    const f = this.filter;
    const since = f.window ? Date.now() / 1000 - f.window : 0;
    const rows = [...this.list.values()]
      .filter((a) => (!f.severity || a.severity === f.severity) && (!f.state || a.state === f.state) && (!f.area || a.area === f.area))
      .filter((a) => !since || (a.changed_at || a.activated_at || 0) >= since)
      .sort((a, b) => (b.priority - a.priority) || ((b.activated_at || 0) - (a.activated_at || 0)));
    const key = SORT_KEYS[this.sort.key];
    if (key) {
      const sign = this.sort.desc ? -1 : 1;
      rows.sort((a, b) => { const x = key(a); const y = key(b); return sign * (x < y ? -1 : x > y ? 1 : 0); });
    }
    return rows;
  }

  counts() {
    let active = 0;
    let unack = 0;
    for (const a of this.list.values()) {
      if (a.active && a.state !== ALARM_STATES.SHELVED && a.state !== ALARM_STATES.SUPPRESSED && a.state !== ALARM_STATES.OUT_OF_SERVICE) active += 1;
      if (UNACK.has(a.state)) unack += 1;
    }
    return { active, unack };
  }

  refresh() {
    this.renderDom();
    this.updateBadges();
    if (this.panel.placed) {
      this.panel.mesh.visible = this.list.size > 0; // in a headset the list shows while there are alarms
      if (this.panel.mesh.visible) this.panel.draw();
    }
  }

  // --- the page -----------------------------------------------------------------------

  mountDom(bar) {
    const button = el('button', { id: 'alarms-open', type: 'button', onclick: () => { box.hidden = !box.hidden; this.renderDom(); } }, 'Alarms');
    const box = el('aside', { id: 'alarms', hidden: '' });
    box.style.cssText = 'position:fixed;left:10px;top:44px;width:min(760px,calc(100% - 20px));max-height:45%;overflow:auto;'
      + 'padding:8px 10px;background:rgba(255,255,255,0.96);border:1px solid #b8c2cc;border-radius:6px;font-size:13px;z-index:5';
    (bar || document.body).append(button);
    document.body.append(box);
    this.dom = { button, box };
    this.renderDom();
  }

  renderDom() {
    if (!this.dom) return;
    const { button, box } = this.dom;
    const { active, unack } = this.counts();
    button.textContent = `Alarm list ${active}${unack ? ` (${unack} unack)` : ''}`;
    button.style.background = unack ? '#f8d7d7' : '';
    button.dataset.count = String(active);
    if (box.hidden) return;
    box.replaceChildren();
    for (const f of this.floods) {
      box.append(el('p', { class: 'alarm-flood' }, `FLOOD in ${f.area || 'the site'}: ${f.count} alarms; first out ${f.first_out}`));
      box.lastChild.style.cssText = 'margin:0 0 6px;color:#fff;background:#b00020;padding:3px 6px;border-radius:4px';
    }
    const choose = (key, label, values) => {
      const sel = el('select', { 'aria-label': label, onchange: (e) => { this.filter[key] = e.target.value; this.renderDom(); } },
        el('option', { value: '' }, `any ${label}`), ...values.map((v) => el('option', { value: v }, v.replace(/_/g, ' '))));
      sel.value = this.filter[key];
      return sel;
    };
    const areas = [...new Set([...this.list.values()].map((a) => a.area).filter(Boolean))].sort();
    const windowSel = el('select', { 'aria-label': 'time', onchange: (e) => { this.filter.window = Number(e.target.value); this.renderDom(); } },
      ...WINDOWS.map(([label, seconds]) => el('option', { value: String(seconds) }, label)));
    windowSel.value = String(this.filter.window);
    box.append(el('div', { class: 'alarm-filters' }, choose('severity', 'severity', [...SEVERITIES].reverse()),
      ' ', choose('state', 'state', Object.values(ALARM_STATES).filter((s) => s !== 'normal')), ' ', choose('area', 'area', areas),
      ' ', windowSel));
    if (this.status) box.append(el('p', { class: 'alarm-status' }, this.status));
    const table = el('table', { id: 'alarm-table' });
    table.style.cssText = 'width:100%;border-collapse:collapse';
    table.append(el('tr', {}, ...['time', 'severity', 'state', 'area', 'device', 'alarm', 'value', ''].map((h) => {
      if (!h) return el('th', {}, h);
      const mark = this.sort.key === h ? (this.sort.desc ? ' ▼' : ' ▲') : '';
      const th = el('th', { 'data-sort': h, onclick: () => {
        this.sort = { key: h, desc: this.sort.key === h ? !this.sort.desc : true };
        this.renderDom();
      } }, h + mark);
      th.style.cursor = 'pointer';
      return th;
    })));
    const canAct = ['operator', 'admin'].includes(this.role());
    for (const a of this.rows()) {
      const tr = el('tr', { 'data-alarm': a.id, title: a.message });
      const state = a.state.replace(/_/g, ' ') + (a.chattering ? ' · chattering' : '') + (a.first_out ? ' · first out' : '');
      const sev = el('td', {}, a.severity);
      sev.style.color = SEVERITY_COLORS[a.severity];
      sev.style.fontWeight = UNACK.has(a.state) ? '700' : '400';
      const device = el('a', { href: '#', onclick: (e) => { e.preventDefault(); this.select(a.device); } }, a.device);
      const actions = el('td', {});
      if (!a.acked) actions.append(el('button', { class: 'alarm-ack', onclick: () => this.ack(a.id) }, 'Ack'));
      if (a.state === ALARM_STATES.SHELVED) actions.append(el('button', { class: 'alarm-unshelve', onclick: () => this.unshelve(a.id) }, 'Unshelve'));
      else actions.append(el('button', { class: 'alarm-shelve', onclick: () => {
        const reason = window.prompt(`Shelve ${a.id} for 1 h: why?`);
        if (reason) this.shelve(a.id, SHELVE_SECONDS, reason);
      } }, 'Shelve 1 h'));
      for (const b of actions.querySelectorAll('button')) { if (!canAct) b.disabled = true; b.title = canAct ? '' : 'log in as an operator'; }
      tr.append(el('td', {}, when(a.activated_at)), sev, el('td', {}, state), el('td', {}, a.area || '-'), el('td', {}, device),
        el('td', {}, a.name), el('td', {}, valueText(a.value)), actions);
      for (const td of tr.children) td.style.cssText += ';padding:2px 4px;border-bottom:1px solid #e3e8ee';
      table.append(tr);
    }
    box.append(table);
    if (!this.list.size) box.append(el('p', {}, 'No alarms.'));
  }

  // --- badges in the scene --------------------------------------------------------------

  /** Build one badge per area over its devices (visuals: id -> DeviceVisual with .info.area and .box). */
  attachScene(siteRoot, visuals) {
    const boxes = new Map();
    for (const v of visuals.values()) {
      const area = v.info.area;
      if (!area || !v.box || v.box.isEmpty()) continue;
      if (!boxes.has(area)) boxes.set(area, new THREE.Box3());
      boxes.get(area).union(v.box);
    }
    this.siteBox = new THREE.Box3();
    for (const b of boxes.values()) this.siteBox.union(b);
    const radius = Math.max(1, this.siteBox.getSize(new THREE.Vector3()).length() / 2);
    this.radius = radius;
    for (const [area, box] of boxes) {
      const canvas = document.createElement('canvas');
      canvas.width = 512;
      canvas.height = 96;
      const texture = new THREE.CanvasTexture(canvas);
      texture.colorSpace = THREE.SRGBColorSpace;
      const sprite = new THREE.Sprite(new THREE.SpriteMaterial({ map: texture, transparent: true, depthTest: false, depthWrite: false }));
      sprite.center.set(0.5, 0);
      sprite.renderOrder = 12;
      const h = Math.max(0.6, radius * 0.06);
      sprite.scale.set(h * 512 / 96, h, 1);
      const top = box.getCenter(new THREE.Vector3());
      top.y = box.max.y + h * 0.6;
      sprite.position.copy(top);
      sprite.name = `alarm badge ${area}`;
      sprite.visible = false;
      this.badgeRoot.add(sprite);
      this.badges.set(area, { sprite, canvas, texture, text: '' });
    }
    siteRoot.add(this.badgeRoot);
    this.updateBadges();
  }

  updateBadges() {
    for (const [area, b] of this.badges) {
      const n = this.areas[area] || 0;
      const text = n ? `${area}: ${n} alarm${n === 1 ? '' : 's'}` : '';
      if (text !== b.text) {
        b.text = text;
        const ctx = b.canvas.getContext('2d');
        ctx.clearRect(0, 0, 512, 96);
        if (text) {
          ctx.font = '600 44px "DejaVu Sans", system-ui, sans-serif';
          const w = Math.min(504, ctx.measureText(text).width + 40);
          ctx.fillStyle = '#b00020';
          roundRect(ctx, (512 - w) / 2, 8, w, 80, 26);
          ctx.fill();
          ctx.fillStyle = '#ffffff';
          ctx.textAlign = 'center';
          ctx.textBaseline = 'middle';
          ctx.fillText(text, 256, 50, 480);
        }
        b.texture.needsUpdate = true;
      }
      b.sprite.visible = !!text && this.zoomedOut;
    }
  }

  /** Badges show while zoomed out (always in a headset, where the whole site is in reach). */
  update(camera, siteRoot, presenting) {
    if (!this.siteBox) return false;
    const center = this.siteBox.getCenter(new THREE.Vector3()).applyMatrix4(siteRoot.matrixWorld);
    const scale = siteRoot.scale.x || 1;
    const eye = new THREE.Vector3().setFromMatrixPosition(camera.matrixWorld);
    const zoomedOut = presenting || eye.distanceTo(center) > 1.2 * this.radius * scale;
    if (zoomedOut === this.zoomedOut) return false;
    this.zoomedOut = zoomedOut;
    this.updateBadges();
    return true;
  }

  shownBadges() {
    const out = {};
    for (const [area, b] of this.badges) if (b.sprite.visible) out[area] = b.text;
    return out;
  }
}

/** The alarm list in a headset: a canvas on a plane, its buttons hit by the controller ray. */
class AlarmPanel3D {
  constructor(alarms) {
    this.alarms = alarms;
    this.canvas = document.createElement('canvas');
    this.canvas.width = PW;
    this.canvas.height = PH;
    this.texture = new THREE.CanvasTexture(this.canvas);
    this.texture.colorSpace = THREE.SRGBColorSpace;
    const material = new THREE.MeshBasicMaterial({ map: this.texture, alphaTest: 0.5, side: THREE.DoubleSide });
    this.mesh = new THREE.Mesh(new THREE.PlaneGeometry(PANEL_WIDTH, PANEL_WIDTH * (PH / PW)), material);
    this.mesh.name = 'twinview-alarm-panel';
    this.mesh.visible = false;
    this.mesh.renderOrder = 20;
    this.buttons = [];
    this.placed = false; // true while presenting (shown whenever there are alarms)
  }

  /** Left of where the device panel goes: in front of the head, turned towards it. */
  placeBefore(camera) {
    const head = new THREE.Vector3().setFromMatrixPosition(camera.matrixWorld);
    const forward = new THREE.Vector3(0, 0, -1).applyQuaternion(camera.getWorldQuaternion(new THREE.Quaternion()));
    forward.y = 0;
    if (forward.lengthSq() < 1e-6) forward.set(0, 0, -1);
    forward.normalize();
    const left = new THREE.Vector3(forward.z, 0, -forward.x);
    this.mesh.position.copy(head).addScaledVector(forward, 1.1).addScaledVector(left, 0.85);
    this.mesh.position.y = head.y - 0.1;
    this.mesh.lookAt(head.x, this.mesh.position.y, head.z);
    this.mesh.updateMatrixWorld(true);
  }

  show(camera) {
    this.placed = true;
    this.placeBefore(camera);
    this.mesh.visible = this.alarms.list.size > 0;
    this.draw();
  }

  hide() { this.placed = false; this.mesh.visible = false; }

  draw() {
    const ctx = this.canvas.getContext('2d');
    const a = this.alarms;
    ctx.clearRect(0, 0, PW, PH);
    ctx.fillStyle = '#f7f9fb';
    roundRect(ctx, 2, 2, PW - 4, PH - 4, 24);
    ctx.fill();
    ctx.strokeStyle = '#7d8a97';
    ctx.lineWidth = 4;
    ctx.stroke();
    this.buttons = [];
    ctx.textBaseline = 'top';
    const { active, unack } = a.counts();
    ctx.fillStyle = '#1c232b';
    ctx.font = '600 38px "DejaVu Sans", sans-serif';
    ctx.fillText(`Alarms: ${active} active, ${unack} unacknowledged`, 26, 20, PW - 52);
    let y = 72;
    for (const f of a.floods) {
      ctx.fillStyle = '#b00020';
      ctx.font = '600 26px "DejaVu Sans", sans-serif';
      ctx.fillText(`FLOOD in ${f.area || 'the site'}: first out ${f.first_out}`, 26, y, PW - 52);
      y += 34;
    }
    const canAct = ['operator', 'admin'].includes(a.role());
    for (const alarm of a.rows().slice(0, ROWS_3D)) {
      ctx.fillStyle = SEVERITY_COLORS[alarm.severity];
      ctx.fillRect(26, y + 4, 12, 60);
      ctx.fillStyle = '#1c232b';
      ctx.font = '600 28px "DejaVu Sans", sans-serif';
      ctx.fillText(`${alarm.device} ${alarm.name}`, 50, y, 470);
      ctx.font = '24px "DejaVu Sans", sans-serif';
      ctx.fillStyle = UNACK.has(alarm.state) ? '#a01818' : '#56616d';
      ctx.fillText(`${alarm.severity} · ${alarm.state.replace(/_/g, ' ')} · ${valueText(alarm.value)}`, 50, y + 36, 470);
      if (!alarm.acked) this.button(ctx, 'Ack', 540, y + 4, 150, 60, { kind: 'ack', alarm: alarm.id }, canAct);
      if (alarm.state !== ALARM_STATES.SHELVED) this.button(ctx, 'Shelve 1 h', 706, y + 4, 168, 60, { kind: 'shelve', alarm: alarm.id }, canAct);
      y += 80;
    }
    if (a.list.size > ROWS_3D) {
      ctx.fillStyle = '#56616d';
      ctx.font = '24px "DejaVu Sans", sans-serif';
      ctx.fillText(`+ ${a.list.size - ROWS_3D} more`, 26, y);
    }
    if (a.status) {
      ctx.fillStyle = a.status.includes('refused') ? '#a01818' : '#1c232b';
      ctx.font = '24px "DejaVu Sans", sans-serif';
      ctx.fillText(a.status, 26, PH - 40, PW - 52);
    }
    this.texture.needsUpdate = true;
  }

  button(ctx, label, x, y, w, h, action, enabled) {
    ctx.fillStyle = enabled ? '#e8edf2' : '#f0f0f0';
    roundRect(ctx, x, y, w, h, 12);
    ctx.fill();
    ctx.strokeStyle = '#7d8a97';
    ctx.lineWidth = 3;
    ctx.stroke();
    ctx.fillStyle = enabled ? '#1c232b' : '#9aa3ad';
    ctx.font = '26px "DejaVu Sans", sans-serif';
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.fillText(label, x + w / 2, y + h / 2, w - 12);
    ctx.textAlign = 'left';
    ctx.textBaseline = 'top';
    this.buttons.push({ label: `${label} ${action.alarm}`, x, y, w, h, action });
  }

  /** Act on the button under a ray hit's uv; true when one was hit. */
  press(uv) {
    const x = uv.x * PW;
    const y = (1 - uv.y) * PH;
    const b = this.buttons.find((btn) => x >= btn.x && x <= btn.x + btn.w && y >= btn.y && y <= btn.y + btn.h);
    if (!b) return false;
    if (b.action.kind === 'ack') this.alarms.ack(b.action.alarm);
    else this.alarms.shelve(b.action.alarm, SHELVE_SECONDS, 'shelved from a headset for 1 h');
    return true;
  }

  buttonWorldPosition(label) {
    const b = this.buttons.find((btn) => btn.label === label);
    if (!b) return null;
    const height = PANEL_WIDTH * (PH / PW);
    const local = new THREE.Vector3(((b.x + b.w / 2) / PW - 0.5) * PANEL_WIDTH, (0.5 - (b.y + b.h / 2) / PH) * height, 0);
    this.mesh.updateMatrixWorld(true);
    return local.applyMatrix4(this.mesh.matrixWorld);
  }
}
