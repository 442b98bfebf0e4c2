// Camera moves: fit the whole site whatever the window's shape, fly to a device,
// both animated (ease in-out) and drawn only while they move.
import * as THREE from 'three';

const FLY_MS = 700;

export class CameraMover {
  constructor(camera, controls, onMove) {
    this.camera = camera;
    this.controls = controls;
    this.onMove = onMove;
    this.anim = null;
  }

  get moving() { return this.anim !== null; }

  stop() { this.anim = null; }

  /** The view direction (from target to camera) of the site's preset camera, or a default. */
  direction(preset) {
    if (preset) {
      const d = new THREE.Vector3().fromArray(preset.position).sub(new THREE.Vector3().fromArray(preset.target));
      if (d.lengthSq() > 1e-9) return d.normalize();
    }
    return new THREE.Vector3(0.9, 0.75, 1.1).normalize();
  }

  /** Distance along `dir` from `center` at which every corner of the box is inside the view (with a margin). */
  fitDistance(box, center, dir, margin = 0.9) {
    const cam = this.camera.clone();
    const corners = [];
    for (const x of [box.min.x, box.max.x]) for (const y of [box.min.y, box.max.y]) for (const z of [box.min.z, box.max.z]) corners.push(new THREE.Vector3(x, y, z));
    const fits = (d) => {
      cam.position.copy(center).addScaledVector(dir, d);
      cam.lookAt(center);
      cam.updateMatrixWorld(true);
      cam.updateProjectionMatrix();
      const p = new THREE.Vector3();
      return corners.every((c) => { p.copy(c).project(cam); return p.z < 1 && Math.abs(p.x) <= margin && Math.abs(p.y) <= margin; });
    };
    const size = box.getSize(new THREE.Vector3()).length() || 1;
    let lo = size * 0.05;
    let hi = size * 2;
    while (!fits(hi) && hi < size * 1000) hi *= 2;
    for (let i = 0; i < 30; i++) { const mid = (lo + hi) / 2; if (fits(mid)) hi = mid; else lo = mid; }
    return hi;
  }

  /** Show the whole site (the preset camera's direction, as close as the window's shape allows). */
  fit(bounds, preset, animate = true) {
    const box = new THREE.Box3(new THREE.Vector3().fromArray(bounds.lo), new THREE.Vector3().fromArray(bounds.hi));
    const center = box.getCenter(new THREE.Vector3());
    const dir = this.direction(preset);
    const d = this.fitDistance(box, center, dir);
    this.camera.near = Math.max(0.01, bounds.radius / 500);
    this.camera.far = Math.max(d * 4, bounds.radius * 40);
    this.camera.updateProjectionMatrix();
    this.controls.maxDistance = d * 4;
    this.go(center.clone().addScaledVector(dir, d), center, animate);
  }

  /** Bring a device (its world box) into the middle of the view, close enough to read it. */
  flyTo(box) {
    const center = box.getCenter(new THREE.Vector3());
    const dir = this.camera.position.clone().sub(this.controls.target);
    if (dir.lengthSq() < 1e-9) dir.set(0.6, 0.6, 0.8);
    dir.normalize();
    if (dir.y < 0.35) { dir.y = 0.35; dir.normalize(); } // look from above, over neighbours
    const size = box.getSize(new THREE.Vector3()).length();
    const d = Math.max(this.fitDistance(box, center, dir, 0.25), size * 1.5, this.camera.near * 20);
    this.go(center.clone().addScaledVector(dir, d), center, true);
  }

  go(position, target, animate) {
    if (!animate) {
      this.camera.position.copy(position);
      this.controls.target.copy(target);
      this.controls.update();
      this.anim = null;
      this.onMove();
      return;
    }
    this.anim = {
      p0: this.camera.position.clone(), t0: this.controls.target.clone(), p1: position.clone(), t1: target.clone(), start: null,
    };
    this.onMove();
  }

  /** Advance an animation; true while it moves. */
  step(time) {
    const a = this.anim;
    if (!a) return false;
    if (a.start === null) a.start = time;
    const k = Math.min(1, (time - a.start) / FLY_MS);
    const e = k < 0.5 ? 2 * k * k : 1 - ((-2 * k + 2) ** 2) / 2;
    this.camera.position.lerpVectors(a.p0, a.p1, e);
    this.controls.target.lerpVectors(a.t0, a.t1, e);
    this.controls.update();
    if (k >= 1) this.anim = null;
    this.onMove();
    return true;
  }
}
