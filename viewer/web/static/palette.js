// Value colours that can never be mistaken for a state. Red (alarm, fault) and magenta
// (bad value) are reserved for states; a site's continuous colour map that uses those
// hues (heat, coolwarm, ...) is drawn on the page with VALUE_RAMP instead (dark blue,
// teal, green, yellow: no red, no magenta, no grey), from the same value and range.
// State maps (enum/bool colours, thresholds) are the site's own and stay as they are.

export const VALUE_RAMP = ['#1d3557', '#2a6f97', '#3fa39a', '#8cc66d', '#f2dc4b'];

function hexRgb(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

function hsl([r, g, b]) {
  const R = r / 255; const G = g / 255; const B = b / 255;
  const max = Math.max(R, G, B); const min = Math.min(R, G, B);
  const l = (max + min) / 2;
  if (max === min) return [0, 0, l];
  const d = max - min;
  const s = l > 0.5 ? d / (2 - max - min) : d / (max + min);
  let h;
  if (max === R) h = ((G - B) / d + (G < B ? 6 : 0)) * 60;
  else if (max === G) h = ((B - R) / d + 2) * 60;
  else h = ((R - G) / d + 4) * 60;
  return [h, s, l];
}

/** True for a colour that looks like a state colour: red or magenta, saturated. */
export function reservedHue(hex) {
  const [h, s, l] = hsl(hexRgb(hex));
  if (s < 0.45 || l < 0.18 || l > 0.8) return false;
  return h >= 335 || h <= 22 || (h >= 280 && h <= 330);
}

/** The ramp to use for a device's colour overlay, or null to keep the site's colours. */
export function safeRamp(color) {
  if (!color || !color.map || !color.gradient || !color.gradient.length) return null;
  return color.gradient.some(reservedHue) ? VALUE_RAMP : null;
}

/** [r, g, b] in 0..1 (sRGB) of a ramp at t in 0..1. */
export function rampColor(ramp, t) {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (ramp.length - 1);
  const i = Math.min(ramp.length - 2, Math.floor(x));
  const k = x - i;
  const a = hexRgb(ramp[i]);
  const b = hexRgb(ramp[i + 1]);
  return a.map((v, j) => (v + (b[j] - v) * k) / 255);
}
