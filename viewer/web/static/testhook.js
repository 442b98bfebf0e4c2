// window.twinview: the page's state and a few actions, for tests and debugging (docs/web.md).
// c: getters of the page's parts (they are created after this is installed).
import * as THREE from 'three';

export function installHook(hook, c) {
  Object.assign(hook, {
    deviceColor(id) {
      const v = c.visuals.get(id);
      return v ? { color: v.colorHex(), painted: v.painted, flags: v.entry ? v.entry.flags : null, opacity: v.material.opacity } : null;
    },
    deviceEntry(id) {
      const v = c.visuals.get(id);
      return v ? v.entry : null;
    },
    /** CSS pixel position (page coordinates) of the centre of a device's top face (desktop view). */
    screenPosition(id, offset = [0, 0, 0]) {
      const v = c.visuals.get(id);
      if (!v) return null;
      const p = v.box.getCenter(new THREE.Vector3());
      p.y = v.box.max.y;
      p.add(new THREE.Vector3().fromArray(offset));
      p.applyMatrix4(c.siteRoot.matrixWorld).project(c.camera);
      const rect = c.renderer.domElement.getBoundingClientRect();
      return { x: rect.left + ((p.x + 1) / 2) * rect.width, y: rect.top + ((1 - p.y) / 2) * rect.height };
    },
    /** CSS pixel position (page coordinates) of the centre of a device's box. */
    centrePosition(id) {
      const v = c.visuals.get(id);
      if (!v) return null;
      const p = v.box.getCenter(new THREE.Vector3()).applyMatrix4(c.siteRoot.matrixWorld).project(c.camera);
      const rect = c.renderer.domElement.getBoundingClientRect();
      return { x: rect.left + ((p.x + 1) / 2) * rect.width, y: rect.top + ((1 - p.y) / 2) * rect.height };
    },
    /** Page rectangle of the 3D view. */
    viewRect() {
      const r = c.renderer.domElement.getBoundingClientRect();
      return { left: r.left, top: r.top, right: r.right, bottom: r.bottom, width: r.width, height: r.height };
    },
    /** World position of a device's centre (where the site is placed now, also in XR). */
    worldPosition(id) {
      const v = c.visuals.get(id);
      if (!v) return null;
      const p = v.box.getCenter(new THREE.Vector3()).applyMatrix4(c.siteRoot.matrixWorld);
      return { x: p.x, y: p.y, z: p.z };
    },
    pickAt: (x, y) => c.pickAt(x, y),
    drawCost: () => c.drawMs,
    cameraState() {
      return { position: c.camera.position.toArray(), target: c.controls.target.toArray(), moving: c.mover.moving };
    },
    select: (id) => c.select(id, { fly: true }),
    focus: (id) => c.focusDevice(id),
    fit: () => c.mover.fit(c.siteBounds(), c.info.camera, true),
    login: (token) => c.connection.login(token),
    sendCommand: (device, command, args, confirmed) => c.sendCommand(device, command, args, confirmed),
    enterXR: (mode = 'immersive-vr') => c.xr.enter(mode),
    exitXR: () => c.xr.exit(),
    commandLog: (id) => c.commandLog.records(id),
    trend: () => (c.trend.point ? { device: c.trend.device, point: c.trend.point.id, range: c.trend.range, samples: c.trend.samplesInRange(), loaded: c.trend.loaded, drawn: c.trend.drawn } : null),
    panel() {
      return {
        visible: c.panel3d.mesh.visible, device: c.panel3d.device ? c.panel3d.device.id : null,
        confirming: c.panel3d.confirming ? c.panel3d.confirming.label : null, status: c.panel3d.status, blocked: c.panel3d.blocked || '',
        buttons: c.panel3d.buttons.map((b) => b.label),
      };
    },
    alarmButtonPosition(label) {
      const p = c.alarms.panel.buttonWorldPosition(label);
      return p ? { x: p.x, y: p.y, z: p.z } : null;
    },
    panelButtonPosition(label) {
      const p = c.panel3d.buttonWorldPosition(label);
      return p ? { x: p.x, y: p.y, z: p.z } : null;
    },
    labelText: (id) => (c.labels.get(id) && c.labels.get(id).wanted ? [c.labels.get(id).tag, c.labels.get(id).text].filter(Boolean).join(' ') : null),
    labelScreen: (id) => (c.labels.get(id) && c.labels.get(id).sprite.visible ? c.labels.get(id).screen : null),
    partAngle(id, motion = 0) {
      const v = c.visuals.get(id);
      const part = v && v.parts.get(motion);
      return part ? part.angle : null;
    },
  });
}
