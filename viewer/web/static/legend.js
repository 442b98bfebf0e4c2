// The legend: what every colour on the page means. State colours first (they are
// reserved for states), then each device type's value colours from site.json.
import { safeRamp } from './palette.js';

export const STATE_SWATCHES = [
  ['#c92a2a', 'Alarm (pulses; red label)'],
  ['#343a40', 'Offline (dark, see-through)'],
  ['#a61e9e', 'Bad value (magenta glow)'],
  ['#b9b9b9', 'Stale or no connection (greyed)'],
  ['#1c62c4', 'Command pending (blue glow)'],
  ['#e8590c', 'Selected (orange box)'],
];

function item(color, text, gradient = null) {
  const li = document.createElement('li');
  const sw = document.createElement('span');
  if (gradient) {
    sw.className = 'grad';
    sw.style.background = `linear-gradient(to right, ${gradient.join(', ')})`;
  } else {
    sw.className = 'sw';
    sw.style.background = color;
  }
  const t = document.createElement('span');
  t.textContent = text;
  if (gradient) li.append(t, sw); else li.append(sw, t);
  return li;
}

export function buildLegend(root, devices) {
  root.replaceChildren();
  const h = document.createElement('h4');
  h.textContent = 'States';
  const ul = document.createElement('ul');
  for (const [c, t] of STATE_SWATCHES) ul.append(item(c, t));
  root.append(h, ul);
  const seen = new Set();
  for (const d of devices) {
    const c = d.color;
    if (!c) continue;
    const key = `${d.type}:${c.point}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const point = d.points.find((p) => p.id === c.point);
    const unit = point && point.unit ? ` ${point.unit}` : '';
    const head = document.createElement('h4');
    head.textContent = `${d.type}: ${point ? point.label || point.id : c.point}`;
    const list = document.createElement('ul');
    for (const [state, hex] of Object.entries(c.states || {})) list.append(item(hex, state === 'true' ? 'on' : state === 'false' ? 'off' : state));
    for (const [v, hex] of c.stops || []) list.append(item(hex, `from ${v}${unit}`));
    if (c.gradient && c.gradient.length) {
      const [lo, hi] = c.range || [0, 1];
      list.append(item(null, `${lo}${unit}`, safeRamp(c) || c.gradient));
      list.lastChild.append(document.createTextNode(`${hi}${unit}`));
    }
    if (list.children.length) root.append(head, list);
  }
  const note = document.createElement('p');
  note.textContent = 'Without a colour: no value yet (model colours).';
  note.style.margin = '6px 0 0';
  root.append(note);
}
