// What is wrong with a device, in one word, and the top bar's summary of the whole site.
//
// Kinds, most important first: alarm, offline, bad, stale, nodata. A device can be in
// several (an alarm on a stale value); its main kind is the first. While the page
// has no connection to the server every device is at least stale: nothing is shown
// as current when the page cannot know.
import { FLAGS } from './looks.js';

export const KINDS = ['alarm', 'offline', 'bad', 'stale', 'nodata'];
export const KIND_WORDS = { alarm: 'In alarm', offline: 'Offline', bad: 'Bad', stale: 'Stale', nodata: 'No data' };
export const KIND_WORD = { alarm: 'alarm', offline: 'offline', bad: 'bad value', stale: 'stale', nodata: 'no data', ok: 'ok' };

/** The set of kinds that apply to a device entry (null: no data yet). */
export function kindsOf(entry, connected = true) {
  const kinds = new Set();
  if (!entry) { kinds.add('nodata'); if (!connected) kinds.add('stale'); return kinds; }
  const f = entry.flags;
  if (f & FLAGS.ALARM) kinds.add('alarm');
  if (f & FLAGS.OFFLINE) kinds.add('offline');
  if (f & FLAGS.BAD) kinds.add('bad');
  if ((f & FLAGS.STALE) || !connected) kinds.add('stale');
  const points = Object.values(entry.points || {});
  if (points.length && points.every((p) => p.q === 'no data')) kinds.add('nodata');
  return kinds;
}

export function mainKind(kinds) {
  for (const k of KINDS) if (kinds.has(k)) return k;
  return 'ok';
}

/** Plain words for why a device is listed under a kind, e.g. "State: fault" for an alarm. */
export function reason(info, entry, kind) {
  if (!entry) return KIND_WORD.nodata;
  const points = entry.points || {};
  if (kind === 'alarm') {
    const bad = info.points.filter((p) => points[p.id] && points[p.id].a);
    if (bad.length) return bad.map((p) => `${p.label || p.id}: ${shortValue(p, points[p.id].v)}`).join(', ');
  }
  return KIND_WORD[kind] || kind;
}

function shortValue(p, v) {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'number') return `${Number.isInteger(v) ? v : v.toFixed(1)}${p.unit ? ' ' + p.unit : ''}`;
  if (typeof v === 'boolean') return v ? 'on' : 'off';
  return String(v);
}

/** The top bar's counts: one button per kind; a click opens the list of those devices. */
export class StatusSummary {
  constructor(root, onOpen) {
    this.root = root;
    this.buttons = {};
    this.active = null;
    for (const kind of KINDS) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = `k-${kind} zero`;
      b.dataset.kind = kind;
      b.setAttribute('aria-pressed', 'false');
      b.innerHTML = `<span class="n">0</span> <span class="w"></span>`;
      b.querySelector('.w').textContent = KIND_WORDS[kind];
      b.addEventListener('click', () => onOpen(this.active === kind ? null : kind));
      root.append(b);
      this.buttons[kind] = b;
    }
    this.counts = Object.fromEntries(KINDS.map((k) => [k, 0]));
  }

  update(counts) {
    this.counts = counts;
    for (const kind of KINDS) {
      const b = this.buttons[kind];
      const n = counts[kind] || 0;
      b.querySelector('.n').textContent = String(n);
      b.classList.toggle('zero', n === 0);
      b.title = `${n} device${n === 1 ? '' : 's'}: ${KIND_WORDS[kind].toLowerCase()} (show them)`;
    }
  }

  setActive(kind) {
    this.active = kind;
    for (const k of KINDS) this.buttons[k].setAttribute('aria-pressed', String(k === kind));
  }
}
