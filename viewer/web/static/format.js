// Text for values, qualities and commands, shared by the side panel and the headset panel.

export const NO_VALUE = '—';

export function formatNumber(x) {
  if (Number.isInteger(x) && Math.abs(x) < 1e9) return String(x);
  const a = Math.abs(x);
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

export function formatValue(point, value) {
  if (value === null || value === undefined) return NO_VALUE;
  let text;
  if (typeof value === 'boolean') text = value ? 'on' : 'off';
  else if (typeof value === 'number') text = formatNumber(value);
  else text = String(value);
  return point && point.unit ? `${text} ${point.unit}` : text;
}

export function age(ts, now = Date.now() / 1000) {
  if (ts === null || ts === undefined) return '';
  const s = Math.max(0, now - ts);
  if (s < 60) return `${s.toFixed(0)} s ago`;
  if (s < 3600) return `${(s / 60).toFixed(0)} min ago`;
  return `${(s / 3600).toFixed(1)} h ago`;
}

// Where an argument starts, the same rule as the desktop (twinview.twin.commands.initial_value):
// its default; else the value its device reports now (a.from_point); else nothing: it must be entered.
export function initialArg(a, points) {
  if (a.default !== null && a.default !== undefined) return a.default;
  const rec = a.from_point && points ? points[a.from_point] : null;
  if (rec && rec.v !== null && rec.v !== undefined) return rec.v;
  if (a.kind === 'enum') return a.states.length ? a.states[0] : null;
  return null;
}

/** The point an argument takes its start and unit from: `from_point`, else the point of the same name. */
export function argPoint(info, a) {
  if (!info) return null;
  return info.points.find((p) => p.id === (a.from_point || a.name)) || null;
}

/** The buttons a command offers in the headset (no number entry there). Arguments start as
 *  on the page and the desktop (initialArg: default, else the reported value of from_point,
 *  else the command is disabled: never a silent 0). One button per enum state or bool value;
 *  a single number argument gets its start value and steps of a tenth of its range down and
 *  up (clamped), each asking to confirm. points: the device's entry points; info: its
 *  site.json entry (for units). */
export function commandVariants(cmd, points = null, info = null) {
  const args = {};
  let numeric = null;
  for (const a of cmd.args) {
    const point = argPoint(info, a);
    const start = initialArg({ ...a, from_point: a.from_point || (point && point.id) }, points || {});
    args[a.name] = start === null && a.kind === 'bool' ? true : start;
    if (a.kind === 'number') numeric = { a, point, current: typeof start === 'number' ? start : null };
  }
  const label = cmd.label || cmd.name;
  if (cmd.args.length === 1 && (cmd.args[0].kind === 'enum' || cmd.args[0].kind === 'bool')) {
    const a = cmd.args[0];
    const values = a.kind === 'enum' ? a.states : [true, false];
    return values.map((v) => ({
      cmd, confirm: cmd.confirm, label: `${label}: ${typeof v === 'boolean' ? (v ? 'on' : 'off') : v}`, args: { [a.name]: v },
    }));
  }
  if (Object.values(args).some((v) => v === null)) return [{ cmd, label: `${label} (no reported value)`, args, disabled: true }];
  const shown = cmd.args.map((a) => `${args[a.name]}`).join(', ');
  const out = [{ cmd, confirm: cmd.confirm || cmd.args.length > 0, label: shown ? `${label} (${shown})` : label, args }];
  if (numeric && numeric.current !== null && cmd.args.length === 1) {
    const { a, point } = numeric;
    const unit = point && point.unit ? ` ${point.unit}` : '';
    const lo = a.min ?? -Infinity;
    const hi = a.max ?? Infinity;
    const span = Number.isFinite(hi - lo) ? hi - lo : Math.max(Math.abs(numeric.current), 1);
    for (const k of [-1, 1]) {
      const v = Math.round(Math.min(hi, Math.max(lo, numeric.current + k * span / 10)) * 100) / 100;
      if (v === Math.round(numeric.current * 100) / 100) continue;
      out.push({ cmd, confirm: true, label: `${label} ${k < 0 ? '−' : '+'} → ${formatNumber(v)}${unit}`, args: { [a.name]: v } });
    }
  }
  return out;
}

export const ROLE_RANK = { viewer: 0, operator: 1, admin: 2 };

export function commandStateText(s) {
  if (!s) return '';
  const what = `${s.command || ''}${s.device ? ' on ' + s.device : ''}`;
  const detail = s.reason || s.detail || '';
  return `${what}: ${s.state || (s.ok ? 'accepted' : 'refused')}${detail ? ' — ' + detail : ''}`;
}
