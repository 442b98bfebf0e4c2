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

/** The buttons a command offers: one per enum state or bool value, else one with defaults. */
// Where an argument starts, the same rule as the desktop (twinview.twin.commands.initial_value):
// its default; else the value its device reports now (a.from_point); else nothing: it must be entered.
export function initialArg(a, points) {
  if (a.default !== null && a.default !== undefined) return a.default;
  const rec = a.from_point && points ? points[a.from_point] : null;
  if (rec && rec.v !== null && rec.v !== undefined) return rec.v;
  if (a.kind === 'enum') return a.states.length ? a.states[0] : null;
  return null;
}

export function commandVariants(cmd, points = null) {
  const args = {};
  let missing = false;
  for (const a of cmd.args) {
    const v = initialArg(a, points);
    if (v === null && a.kind !== 'bool') missing = true;
    args[a.name] = v === null && a.kind === 'bool' ? true : v;
  }
  const label = cmd.label || cmd.name;
  if (cmd.args.length === 1 && (cmd.args[0].kind === 'enum' || cmd.args[0].kind === 'bool')) {
    const a = cmd.args[0];
    const values = a.kind === 'enum' ? a.states : [true, false];
    return values.map((v) => ({
      cmd, label: `${label}: ${typeof v === 'boolean' ? (v ? 'on' : 'off') : v}`, args: { [a.name]: v },
    }));
  }
  if (missing) return [{ cmd, label: `${label} (no reported value)`, args, disabled: true }];
  const shown = cmd.args.map((a) => `${args[a.name]}`).join(', ');
  return [{ cmd, label: shown ? `${label} (${shown})` : label, args }];
}

export const ROLE_RANK = { viewer: 0, operator: 1, admin: 2 };

export function commandStateText(s) {
  if (!s) return '';
  const what = `${s.command || ''}${s.device ? ' on ' + s.device : ''}`;
  const detail = s.reason || s.detail || '';
  return `${what}: ${s.state || (s.ok ? 'accepted' : 'refused')}${detail ? ' — ' + detail : ''}`;
}
