// The inspector's trend chart: one point's history over a chosen range, with its
// value axis, alarm band and time axis. Up to 10 minutes come from the server's
// in-memory history at full resolution (asked when the chart opens, then extended
// by live values); 1 h and 24 h are asked of the server separately, which reads
// its history store (binned to about 1000 points) or says it keeps less.
import { formatNumber } from './format.js';

export const RANGES = [[60, '1 min'], [300, '5 min'], [600, '10 min'], [3600, '1 h'], [86400, '24 h']];
const SHORT = 600; // ranges up to this are drawn from the in-memory history and live values
const MAX_SAMPLES = 5000;

/** Three to five round values between lo and hi (1, 2 or 5 times a power of ten apart). */
export function niceTicks(lo, hi) {
  const span = hi - lo;
  if (!(span > 0)) return [lo];
  const raw = span / 3;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((x) => span / x <= 4.5) || 10 * p;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.round(v / step) * step);
  return out;
}

export class Trend {
  constructor(root, requestHistory) {
    this.root = root;
    this.requestHistory = requestHistory; // (device, point, since) -> bool (sent)
    this.long = null; // { since, t, v, source, window } for ranges beyond SHORT
    this.range = 300;
    this.device = null;
    this.point = null; // site.json point spec
    this.t = [];
    this.v = [];
    this.loaded = false;
    this.root.replaceChildren();
    const bar = document.createElement('div');
    bar.className = 'ranges';
    this.what = document.createElement('span');
    this.what.className = 'what';
    bar.append(this.what);
    this.buttons = RANGES.map(([s, label]) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = label;
      b.dataset.range = String(s);
      b.setAttribute('aria-pressed', String(s === this.range));
      b.setAttribute('aria-label', `Show the last ${label}`);
      b.addEventListener('click', () => this.setRange(s));
      bar.append(b);
      return b;
    });
    this.canvas = document.createElement('canvas');
    this.canvas.setAttribute('role', 'img');
    this.root.append(bar, this.canvas);
  }

  setRange(seconds) {
    this.range = seconds;
    if (seconds > SHORT && this.point && (!this.long || this.long.since < seconds)) {
      this.long = { since: seconds, t: [], v: [], source: null, window: null, loading: true };
      this.requestHistory(this.device, this.point.id, seconds);
    }
    for (const b of this.buttons) b.setAttribute('aria-pressed', String(Number(b.dataset.range) === seconds));
    this.draw();
  }

  /** Chart this point of this device (null: nothing to chart). */
  show(device, point) {
    this.root.hidden = !point;
    if (!point) { this.device = null; this.point = null; return; }
    if (this.device === device && this.point && this.point.id === point.id) { this.draw(); return; }
    this.device = device;
    this.point = point;
    this.t = [];
    this.v = [];
    this.loaded = false;
    this.long = null;
    this.what.textContent = `${point.label || point.id}${point.unit ? ` (${point.unit})` : ''}`;
    this.requestHistory(device, point.id);
    if (this.range > SHORT) { const r = this.range; this.range = 0; this.setRange(r); }
    this.draw();
  }

  /** The server's answer to a history request. */
  history(msg) {
    if (msg.device !== this.device || !this.point || msg.point !== this.point.id) return;
    const t = [];
    const v = [];
    // (a store also keeps quality changes without a value: null here, not drawn)
    for (let i = 0; i < msg.t.length; i++) if (msg.t[i] !== null && msg.v[i] !== null) { t.push(msg.t[i]); v.push(msg.v[i]); }
    if (msg.since && msg.since > SHORT) {
      this.long = { since: msg.since, t, v, source: msg.source, window: msg.window, loading: false };
      this.draw();
      return;
    }
    // keep live samples newer than the history
    const last = t.length ? t[t.length - 1] : -Infinity;
    for (let i = 0; i < this.t.length; i++) if (this.t[i] > last) { t.push(this.t[i]); v.push(this.v[i]); }
    this.t = t;
    this.v = v;
    this.loaded = true;
    this.draw();
  }

  /** A live value of the charted point. */
  add(device, pointId, ts, value) {
    if (device !== this.device || !this.point || pointId !== this.point.id || ts === null || ts === undefined) return;
    let v = value;
    if (typeof v === 'boolean') v = v ? 1 : 0;
    else if (typeof v === 'string') v = this.point.states.indexOf(v);
    if (typeof v !== 'number' || v < 0 && this.point.kind === 'enum') return;
    const n = this.t.length;
    if (n && ts <= this.t[n - 1]) { if (ts === this.t[n - 1]) this.v[n - 1] = v; return; }
    this.t.push(ts);
    this.v.push(v);
    if (this.t.length > MAX_SAMPLES) { this.t.splice(0, this.t.length - MAX_SAMPLES); this.v.splice(0, this.v.length - MAX_SAMPLES); }
    this.draw();
  }

  /** Values drawn in the current range (after the last draw). */
  samplesInRange() {
    return this.drawn ? this.drawn.samples : 0;
  }

  draw() {
    if (!this.point || this.root.hidden) return;
    const c = this.canvas;
    const dpr = Math.min(window.devicePixelRatio || 1, 2);
    const w = Math.max(200, c.clientWidth || 300);
    const h = Math.max(100, c.clientHeight || 150);
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) { c.width = Math.round(w * dpr); c.height = Math.round(h * dpr); }
    const ctx = c.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, w, h);
    const p = this.point;
    const now = Date.now() / 1000;
    const from = now - this.range;
    const L = 46; const R = 8; const T = 8; const B = 20;
    // the data for this range: in-memory and live, or (long ranges) the server's answer plus newer live values
    let TS = this.t;
    let VS = this.v;
    if (this.range > SHORT && this.long) {
      const last = this.long.t.length ? this.long.t[this.long.t.length - 1] : -Infinity;
      TS = this.long.t.slice();
      VS = this.long.v.slice();
      for (let i = 0; i < this.t.length; i++) if (this.t[i] > last) { TS.push(this.t[i]); VS.push(this.v[i]); }
    }
    const idx = [];
    for (let i = 0; i < TS.length; i++) if (TS[i] >= from) idx.push(i);
    // include the sample just before the window, so a steady value still draws a line
    const before = TS.findIndex((t) => t >= from) - 1;
    const start = before >= 0 ? before : (idx.length ? idx[0] : -1);
    const vals = idx.map((i) => VS[i]);
    if (start >= 0 && !idx.includes(start)) vals.push(VS[start]);
    let lo; let hi;
    const states = p.kind === 'enum' ? p.states : p.kind === 'bool' ? ['off', 'on'] : null;
    if (states) { lo = -0.2; hi = states.length - 0.8; } else if (vals.length) {
      lo = Math.min(...vals); hi = Math.max(...vals);
      if (hi - lo < 1e-9 && p.range && lo >= p.range[0] && hi <= p.range[1]) [lo, hi] = p.range; // a steady value: its whole range
      if (p.alarm) { lo = Math.min(lo, p.alarm[0]); hi = Math.max(hi, p.alarm[1]); }
      const pad = (hi - lo) * 0.1 || Math.max(Math.abs(hi) * 0.05, 1);
      lo -= pad; hi += pad;
    } else if (p.range) { [lo, hi] = p.range; } else { lo = 0; hi = 1; }
    const X = (t) => L + ((t - from) / this.range) * (w - L - R);
    const Y = (v) => T + (1 - (v - lo) / (hi - lo)) * (h - T - B);
    ctx.font = '11px system-ui, "DejaVu Sans", sans-serif';
    ctx.fillStyle = '#56616d';
    ctx.strokeStyle = '#e3e8ee';
    ctx.lineWidth = 1;
    // alarm band edges
    if (p.alarm && !states) {
      ctx.fillStyle = 'rgba(201, 42, 42, 0.08)';
      const a0 = Y(p.alarm[0]); const a1 = Y(p.alarm[1]);
      if (a1 > T) ctx.fillRect(L, T, w - L - R, Math.max(0, a1 - T));
      if (a0 < h - B) ctx.fillRect(L, a0, w - L - R, h - B - a0);
      ctx.fillStyle = '#56616d';
    }
    // value axis
    const ticks = states ? states.map((s, i) => [i, s]) : niceTicks(lo, hi).map((v) => [v, formatNumber(v)]);
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (const [v, text] of ticks) {
      const y = Y(v);
      ctx.beginPath(); ctx.moveTo(L, y); ctx.lineTo(w - R, y); ctx.stroke();
      ctx.fillText(String(text).slice(0, 8), L - 4, y);
    }
    // time axis
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    const step = this.range <= 60 ? 15 : this.range <= 300 ? 60 : this.range <= 600 ? 120 : this.range <= 3600 ? 900 : 6 * 3600;
    const steps = Math.round(this.range / step);
    for (let k = 0; k <= steps; k++) {
      const t = from + k * step;
      const x = X(t);
      ctx.beginPath(); ctx.moveTo(x, T); ctx.lineTo(x, h - B); ctx.stroke();
      const every = (w - L - R) / steps < 60 ? 2 : 1;
      if ((steps - k) % every) continue;
      const ago = Math.round(this.range - k * step);
      const text = ago === 0 ? 'now' : ago >= 3600 ? `-${Math.round(ago / 3600)} h` : ago >= 60 ? `-${Math.round(ago / 60)} min` : `-${ago} s`;
      ctx.fillText(text, Math.min(Math.max(x, L + 14), w - R - 14), h - B + 4);
    }
    // the line (steps for states)
    ctx.strokeStyle = '#1c62c4';
    ctx.lineWidth = 2;
    ctx.beginPath();
    let first = true;
    const order = start >= 0 && !idx.includes(start) ? [start, ...idx] : idx;
    let prevY = null;
    for (const i of order) {
      const x = Math.max(L, X(TS[i]));
      const y = Y(VS[i]);
      if (first) { ctx.moveTo(x, y); first = false; } else if (states && prevY !== null) { ctx.lineTo(x, prevY); ctx.lineTo(x, y); } else ctx.lineTo(x, y);
      prevY = y;
    }
    if (!first && order.length && this.live !== false) ctx.lineTo(X(now), prevY);
    ctx.stroke();
    if (!order.length) {
      ctx.fillStyle = '#56616d';
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      const loading = this.range > SHORT ? !this.long || this.long.loading : !this.loaded;
      ctx.fillText(loading ? 'loading history…' : 'no values in this range', (L + w - R) / 2, (T + h - B) / 2);
    }
    const short = this.range > SHORT && this.long && !this.long.loading && this.long.source !== 'store';
    if (short) {
      const kept = this.long.window ? Math.round(this.long.window / 60) : 10;
      ctx.fillStyle = '#8b1a1a';
      ctx.textAlign = 'left';
      ctx.textBaseline = 'top';
      ctx.fillText(`this server keeps the last ${kept} min only (no history store)`, L + 4, T + 2);
    }
    this.canvas.setAttribute('aria-label', `${this.what.textContent}, last ${RANGES.find((r) => r[0] === this.range)[1]}: ${idx.length} values`
      + (vals.length && !states ? `, from ${formatNumber(Math.min(...vals))} to ${formatNumber(Math.max(...vals))}` : ''));
    this.drawn = { samples: idx.length, range: this.range, lo, hi, source: this.range > SHORT ? (this.long && this.long.source) : 'memory', short: !!short };
  }
}
