// Picking: which device a ray points at (mouse, touch and headset controllers alike).
import * as THREE from 'three';

const box = new THREE.Box3();
const centre = new THREE.Vector3();
const size = new THREE.Vector3();
const enter = new THREE.Vector3();

/**
 * The device the ray points at. The nearest surface hit, unless the ray passes close to
 * the centre of a device's box before that (a device's centre is often empty space
 * between its parts, and aiming there must not select the device behind it).
 * visuals: id -> DeviceVisual (box in the site's frame); root: the site's group.
 */
export function pickDevice(raycaster, pickables, visuals, root) {
  const hits = raycaster.intersectObjects(pickables, false);
  let best = null;
  let bestDistance = Infinity;
  for (const hit of hits) {
    const v = hit.object.userData.visual;
    if (v && hit.object.visible) { best = v.id; bestDistance = hit.distance; break; }
  }
  const ray = raycaster.ray;
  let aimed = null;
  let aimedScore = Infinity;
  for (const v of visuals.values()) {
    box.copy(v.box).applyMatrix4(root.matrixWorld);
    if (!ray.intersectBox(box, enter)) continue;
    const t = enter.distanceTo(ray.origin);
    if (t > bestDistance) continue;
    box.getCenter(centre);
    const half = box.getSize(size).length() / 2;
    const off = ray.distanceToPoint(centre) / Math.max(half, 1e-6);
    if (off < 0.3 && off < aimedScore) { aimed = v.id; aimedScore = off; }
  }
  return aimed || best;
}
