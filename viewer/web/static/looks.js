// How one device looks in three.js: its own material (cloned from the site's), paint
// colour, state flags, highlight and moving parts. Mirrors the desktop's rules:
// rgba null keeps the model's colours; stale, bad, offline, alarm and pending
// look different from good (truth first).
import * as THREE from 'three';
import { rampColor, safeRamp } from './palette.js';

import { ALARM_SEVERITY_SHIFT, FLAGS } from './vocabulary.js';

export { FLAGS };

const GREY = new THREE.Color(0.55, 0.55, 0.55);
const OFFLINE = new THREE.Color().setRGB(0.2, 0.22, 0.25, THREE.SRGBColorSpace);
const OFFLINE_OPACITY = 0.45; // offline is dark and see-through: never mistaken for a stopped (grey) device
const EMISSIVE = {
  selected: new THREE.Color(1.0, 0.55, 0.0),
  hovered: new THREE.Color(0.35, 0.35, 0.35),
  pending: new THREE.Color(0.0, 0.35, 1.0),
  bad: new THREE.Color(0.6, 0.0, 0.6),
};

// Alarm colour by severity (low, medium, high, critical), the desktop shader's values (linear).
const ALARM_TINTS = [[0.0, 0.6, 0.9], [1.0, 0.73, 0.0], [1.0, 0.216, 0.0], [1.0, 0.0123, 0.007]].map(
  (c) => new THREE.Color(c[0], c[1], c[2]));

/** How an alarm glows at `time` (seconds), as the desktop draws it: null when there is none.
 *  Active and acknowledged: a steady tint; unacknowledged: it blinks; returned but not
 *  acknowledged: a faint blink. The colour says the severity. */
export function alarmGlow(flags, time) {
  const inAlarm = !!(flags & FLAGS.ALARM);
  const unack = !!(flags & FLAGS.ALARM_UNACK);
  if (!inAlarm && !unack) return null;
  const color = ALARM_TINTS[(flags >> ALARM_SEVERITY_SHIFT) & 3];
  if (inAlarm && !unack) return { color, strength: 0.45 };
  const on = ((time * 1.25) % 1 + 1) % 1 < 0.5;
  return { color, strength: on ? (inAlarm ? 0.6 : 0.25) : 0 };
}

export class DeviceVisual {
  constructor(info, group, material) {
    this.id = info.id;
    this.info = info;
    this.group = group;
    this.material = material.clone();
    this.material.name = `device ${info.id}`;
    this.meshes = [];
    this.parts = new Map(); // motion index -> { obj, kind, axis, base, rate, angle }
    this.entry = null;
    this.selected = false;
    this.hovered = false;
    this.painted = false;
    this.box = new THREE.Box3();
    this.ramp = safeRamp(info.color); // the page's own value ramp when the site's map uses state hues
  }

  /** The paint for an entry: the server's colour, or the page's value ramp (palette.js). */
  paint(entry) {
    const rgba = entry && entry.rgba && entry.rgba[3] > 0 ? entry.rgba : null;
    if (!rgba || !this.ramp) return rgba;
    const c = this.info.color;
    const rec = entry.points && entry.points[c.point];
    if (!rec || typeof rec.v !== 'number') return rgba;
    const [lo, hi] = c.range || [0, 1];
    const [r, g, b] = rampColor(this.ramp, (rec.v - lo) / ((hi - lo) || 1));
    return [r, g, b, rgba[3]];
  }

  addMesh(mesh) {
    mesh.material = this.material;
    mesh.userData.visual = this;
    this.meshes.push(mesh);
  }

  addPart(index, obj) {
    const motion = this.info.motions.find((m) => m.index === index);
    if (!motion) return;
    const axis = new THREE.Vector3().fromArray(motion.axis).normalize();
    this.parts.set(index, { obj, kind: motion.kind, axis, base: obj.position.clone(), rate: 0, angle: 0 });
  }

  /** Bounds in the site's own frame (computed once, before any XR placement). */
  measure(root) {
    root.updateMatrixWorld(true);
    this.box.setFromObject(this.group);
    const inv = new THREE.Matrix4().copy(root.matrixWorld).invert();
    this.box.applyMatrix4(inv);
  }

  /** Apply one device entry from a snapshot or delta (null: back to the model's look).
   *  connected false: the page has lost the server, so the values are stale whatever they say. */
  apply(entry, connected = true) {
    this.entry = entry;
    this.connected = connected;
    let flags = entry ? entry.flags : FLAGS.STALE;
    if (!connected) flags |= FLAGS.STALE;
    const m = this.material;
    const rgba = this.paint(entry);
    if (flags & FLAGS.OFFLINE) {
      this.setPaint(OFFLINE);
    } else if (rgba) {
      const c = new THREE.Color().setRGB(rgba[0], rgba[1], rgba[2], THREE.SRGBColorSpace);
      if (flags & FLAGS.STALE) c.lerp(GREY, 0.55);
      this.setPaint(c);
    } else {
      this.setPaint(null);
      if (flags & FLAGS.STALE) m.color.setRGB(0.8, 0.8, 0.8);
    }
    const offline = !!(flags & FLAGS.OFFLINE);
    if (m.transparent !== offline) { m.transparent = offline; m.needsUpdate = true; }
    m.opacity = offline ? OFFLINE_OPACITY : 1;
    m.depthWrite = !offline;
    // frozen values do not move: a part spinning on a value we cannot vouch for would lie
    this.applyMotion(entry && connected && !(flags & FLAGS.OFFLINE) ? entry.motion : null);
    this.refreshEmissive(0);
  }

  setPaint(color) {
    const m = this.material;
    const painted = color !== null;
    // vertex colours carry the model's own colours; paint replaces them
    if (m.vertexColors === painted) {
      m.vertexColors = !painted;
      m.needsUpdate = true;
    }
    m.color.copy(painted ? color : new THREE.Color(1, 1, 1));
    this.painted = painted;
  }

  applyMotion(targets) {
    if (targets === null) { for (const part of this.parts.values()) part.rate = 0; return; }
    for (const [index, part] of this.parts) {
      const target = targets && index < targets.length ? targets[index] : null;
      if (target === null || target === undefined) continue; // hold the last good value
      if (part.kind === 'rotate') {
        part.rate = target;
      } else if (part.kind === 'translate') {
        part.obj.position.copy(part.base).addScaledVector(part.axis, target);
      } else if (part.kind === 'scale') {
        const a = part.axis;
        const k = target - 1;
        const obj = part.obj;
        obj.matrixAutoUpdate = false;
        obj.matrix.set(
          1 + k * a.x * a.x, k * a.x * a.y, k * a.x * a.z, part.base.x,
          k * a.y * a.x, 1 + k * a.y * a.y, k * a.y * a.z, part.base.y,
          k * a.z * a.x, k * a.z * a.y, 1 + k * a.z * a.z, part.base.z,
          0, 0, 0, 1,
        );
        obj.matrixWorldNeedsUpdate = true;
      }
    }
  }

  /** True while a part spins. */
  get spinning() {
    for (const part of this.parts.values()) if (part.kind === 'rotate' && part.rate) return true;
    return false;
  }

  advance(dt) {
    for (const part of this.parts.values()) {
      if (part.kind !== 'rotate' || !part.rate) continue;
      part.angle = (part.angle + part.rate * dt * 2 * Math.PI) % (2 * Math.PI);
      part.obj.quaternion.setFromAxisAngle(part.axis, part.angle);
    }
  }

  /** True when the emissive colour changes over time (alarm pulse). */
  get pulsing() {
    return !!(this.entry && this.entry.flags & FLAGS.ALARM_UNACK);
  }

  refreshEmissive(time) {
    const flags = this.entry ? this.entry.flags : 0;
    const e = this.material.emissive;
    // selection is an outline (app.js), not a tint: a tint would change the state colour
    const glow = alarmGlow(flags, time);
    if (glow) e.copy(glow.color).multiplyScalar(glow.strength);
    else if (flags & FLAGS.PENDING) e.copy(EMISSIVE.pending).multiplyScalar(0.3);
    else if (flags & FLAGS.BAD) e.copy(EMISSIVE.bad).multiplyScalar(0.3);
    else if (this.hovered) e.copy(EMISSIVE.hovered);
    else e.setRGB(0, 0, 0);
  }

  /** The material colour as '#rrggbb' (sRGB), for tests and the side panel swatch. */
  colorHex() {
    return '#' + this.material.color.getHexString(THREE.SRGBColorSpace);
  }
}
