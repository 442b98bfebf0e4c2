// Immersive sessions (WebXR VR / AR): placing the site at a usable scale, controller
// rays that select what they point at, the in-scene panel's buttons (the same
// commands and confirmations as the page), and the desktop view restored on exit.
//
// VR starts with the site as a model about 2.4 m across at table height in front of
// the user; squeeze (grip) toggles life size (1:1, the selected device or the site
// centre in front); the thumbstick scales (up/down) and turns (left/right) it about
// the point in front of the user. AR: a table-top model about a metre across.
import * as THREE from 'three';
import { CONFIRM_SECONDS } from './sidepanel.js';
import { ROLE_RANK } from './format.js';

const MODEL_SIZE = 2.4; // metres across, VR model view

export class XRSupport {
  constructor(ctx) {
    Object.assign(this, ctx);
    this.controllers = [];
    this.placePanel = false;
    this.saved = null;
    this.scaleMode = 'model';
    this.confirmTimer = null;
    const geometry = new THREE.BufferGeometry().setFromPoints([new THREE.Vector3(0, 0, 0), new THREE.Vector3(0, 0, -1)]);
    for (let i = 0; i < 2; i++) {
      const controller = this.renderer.xr.getController(i);
      const line = new THREE.Line(geometry, new THREE.LineBasicMaterial({ color: 0xffb000 }));
      line.name = 'ray';
      line.scale.z = 8;
      controller.add(line);
      controller.addEventListener('connected', (e) => { controller.userData.handedness = e.data.handedness; });
      controller.addEventListener('select', (e) => this.onSelect(e));
      controller.addEventListener('squeeze', () => this.toggleScale());
      this.scene.add(controller);
      this.controllers.push(controller);
    }
    this.hook.xr.scale = null;
  }

  async setupButtons(toast) {
    if (!navigator.xr) return;
    for (const [mode, id, key] of [['immersive-vr', 'enter-vr', 'vr'], ['immersive-ar', 'enter-ar', 'ar']]) {
      let ok = false;
      try { ok = await navigator.xr.isSessionSupported(mode); } catch (err) { ok = false; }
      this.hook.xr.supported[key] = ok;
      const button = document.getElementById(id);
      button.hidden = !ok;
      button.addEventListener('click', () => {
        if (this.renderer.xr.isPresenting) { this.renderer.xr.getSession().end(); return; }
        this.enter(mode).catch((err) => { this.hook.error = String(err); toast(`could not start ${key.toUpperCase()}: ${err.message || err}`); });
      });
    }
  }

  blockedReason() {
    const h = this.hook;
    if (!h.live) return 'no connection to the server';
    if (h.mode === 'past') return 'showing the past: press Live on the page';
    if (h.actuation === false) return 'this server is read-only';
    if (!h.role) return 'log in on the page first';
    if ((ROLE_RANK[h.role] ?? -1) < 1) return `needs the operator role (you are ${h.role})`;
    return '';
  }

  selected(visual) {
    const p = this.panel3d;
    if (visual) {
      p.blocked = this.blockedReason();
      p.open(visual, this.hook.role);
      p.placeBefore(this.renderer.xr.getCamera());
    } else p.close();
  }

  onSelect(event) {
    this.hook.xr.selects += 1;
    const controller = event.target;
    controller.updateMatrixWorld(true);
    this.raycaster.setFromXRController(controller);
    const p = this.panel3d;
    const alarmPanel = this.alarms ? this.alarms.panel : null;
    const alarmHit = alarmPanel && alarmPanel.mesh.visible ? this.raycaster.intersectObject(alarmPanel.mesh, false)[0] : null;
    const panelHit = p.mesh.visible ? this.raycaster.intersectObject(p.mesh, false)[0] : null;
    if (alarmHit && !(panelHit && panelHit.distance < alarmHit.distance)) {
      this.hook.xr.lastButton = 'alarms';
      alarmPanel.press(alarmHit.uv);
      this.markDirty();
      return;
    }
    if (panelHit) { this.onButton(p.hit(panelHit.uv)); return; }
    this.siteRoot.updateMatrixWorld(true);
    const id = this.pick();
    this.hook.xr.lastHandedness = controller.userData.handedness || null;
    this.hook.xr.lastPick = id;
    if (id) this.select(id);
  }

  disarm() {
    clearInterval(this.confirmTimer);
    this.confirmTimer = null;
    this.panel3d.confirming = null;
  }

  onButton(button) {
    if (!button) return;
    const p = this.panel3d;
    this.hook.xr.lastButton = button.label;
    const a = button.action;
    if (a.kind === 'close') { this.disarm(); this.select(null); return; }
    if (a.kind === 'cancel') { this.disarm(); p.draw(); return; }
    if (a.kind === 'confirm' && p.confirming) {
      const v = p.confirming;
      this.disarm();
      this.sendCommand(p.device.id, v.cmd.name, v.args, true);
      p.draw();
      return;
    }
    if (a.kind === 'command') {
      p.blocked = this.blockedReason();
      if (p.blocked) { p.draw(); return; }
      const v = a.variant;
      if (v.confirm) {
        p.confirming = v;
        p.confirmUntil = Date.now() + CONFIRM_SECONDS * 1000;
        clearInterval(this.confirmTimer);
        this.confirmTimer = setInterval(() => {
          if (Date.now() >= p.confirmUntil) { this.disarm(); p.setStatus(`${v.label}: not confirmed within ${CONFIRM_SECONDS} s`); } else p.draw();
        }, 1000);
        p.draw();
        return;
      }
      this.sendCommand(p.device.id, v.cmd.name, v.args, false);
    }
  }

  /** Place the site for the session: a model in front (VR, AR) or life size (VR, after squeeze). */
  place(mode, scaleMode = 'model') {
    const { lo, center, radius } = this.siteBounds();
    const root = this.siteRoot;
    root.quaternion.identity();
    if (mode === 'immersive-ar') {
      const s = 0.45 / radius;
      root.scale.setScalar(s);
      root.position.set(-center.x * s, 0.85 - lo[1] * s, -center.z * s - 1.0);
      this.scene.background = null;
    } else if (scaleMode === 'model') {
      const s = Math.min(1, MODEL_SIZE / (2 * radius));
      root.scale.setScalar(s);
      // table height, the near edge about 0.5 m in front
      root.position.set(-center.x * s, 0.8 - lo[1] * s, -center.z * s - (radius * s + 0.5));
    } else {
      const v = this.visuals.get(this.hook.selectedDevice);
      const focus = v ? v.box.getCenter(new THREE.Vector3()) : center;
      root.scale.setScalar(1);
      root.position.set(-focus.x, -lo[1], -focus.z - 3.0);
    }
    this.scaleMode = scaleMode;
    this.hook.xr.scale = root.scale.x;
    this.hook.xr.scaleMode = mode === 'immersive-ar' ? 'table' : scaleMode;
    root.updateMatrixWorld(true);
    this.fitLabels();
    this.markDirty();
  }

  toggleScale() {
    if (!this.renderer.xr.isPresenting || this.hook.xr.mode !== 'immersive-vr') return;
    this.place('immersive-vr', this.scaleMode === 'model' ? 'life' : 'model');
    if (this.panel3d.device) this.placePanel = true;
  }

  async enter(mode) {
    if (!navigator.xr) throw new Error('WebXR is not available in this browser');
    this.saved = { position: this.camera.position.clone(), quaternion: this.camera.quaternion.clone(), target: this.controls.target.clone(), fov: this.camera.fov };
    const session = await navigator.xr.requestSession(mode, { optionalFeatures: ['local-floor', 'bounded-floor', 'hand-tracking'] });
    session.addEventListener('end', () => this.onEnd());
    await this.renderer.xr.setSession(session);
    this.hook.xr.presenting = true;
    this.hook.xr.mode = mode;
    this.sidePanel.show(null);
    this.place(mode, 'model');
    if (this.alarms) this.alarms.placePending = true;
    const selected = this.visuals.get(this.hook.selectedDevice);
    if (selected) { this.panel3d.blocked = this.blockedReason(); this.panel3d.open(selected, this.hook.role); this.placePanel = true; }
    return true;
  }

  async exit() {
    const s = this.renderer.xr.getSession();
    if (s) await s.end();
  }

  onEnd() {
    this.hook.xr.presenting = false;
    this.hook.xr.mode = null;
    this.disarm();
    this.siteRoot.position.set(0, 0, 0);
    this.siteRoot.quaternion.identity();
    this.siteRoot.scale.setScalar(1);
    this.siteRoot.updateMatrixWorld(true);
    this.scene.background = this.background;
    this.panel3d.close();
    if (this.alarms) this.alarms.panel.hide();
    // The session is still presenting during its 'end' event: restore the desktop view after it.
    setTimeout(() => {
      const saved = this.saved;
      if (saved) {
        this.camera.position.copy(saved.position);
        this.camera.quaternion.copy(saved.quaternion);
        this.camera.fov = saved.fov;
        this.controls.target.copy(saved.target);
        this.controls.update();
        this.camera.updateProjectionMatrix();
      }
      const selected = this.visuals.get(this.hook.selectedDevice);
      if (selected) this.sidePanel.show(selected);
      this.onResize(true);
      this.fitLabels();
      this.markDirty();
      this.hook.xr.restored = true;
    }, 0);
  }

  afterRender() {
    if (!this.renderer.xr.isPresenting) { this.lastStick = null; return; }
    if (this.placePanel) {
      this.placePanel = false;
      this.panel3d.placeBefore(this.renderer.xr.getCamera());
    }
    if (this.alarms && this.alarms.placePending) { this.alarms.placePending = false; this.alarms.panel.show(this.renderer.xr.getCamera()); }
    this.thumbsticks();
  }

  /** Thumbstick (either hand): up/down scales the site about the point in front of the user, left/right turns it. */
  thumbsticks() {
    const session = this.renderer.xr.getSession();
    const now = performance.now();
    const dt = this.lastStick === null || this.lastStick === undefined ? 0 : Math.min((now - this.lastStick) / 1000, 0.1);
    this.lastStick = now;
    if (!session || !dt) return;
    let zoom = 0;
    let turn = 0;
    for (const source of session.inputSources) {
      const axes = source.gamepad ? source.gamepad.axes : null;
      if (!axes || axes.length < 4) continue;
      if (Math.abs(axes[3]) > 0.2) zoom += -axes[3];
      if (Math.abs(axes[2]) > 0.2) turn += -axes[2];
    }
    if (!zoom && !turn) return;
    const root = this.siteRoot;
    const head = new THREE.Vector3().setFromMatrixPosition(this.renderer.xr.getCamera().matrixWorld);
    const pivot = new THREE.Vector3(head.x, root.position.y, head.z - 1.0); // about a metre ahead, at the site's floor
    const factor = Math.exp(zoom * dt * 1.2); // about x3 per second held
    const scale = Math.min(1, Math.max(0.002, root.scale.x * factor));
    const k = scale / root.scale.x;
    const q = new THREE.Quaternion().setFromAxisAngle(new THREE.Vector3(0, 1, 0), turn * dt * 1.5);
    root.position.sub(pivot).multiplyScalar(k).applyQuaternion(q).add(pivot);
    root.scale.setScalar(scale);
    root.quaternion.premultiply(q);
    root.updateMatrixWorld(true);
    this.hook.xr.scale = scale;
    this.scaleMode = scale >= 0.999 ? 'life' : 'model';
    this.hook.xr.scaleMode = this.scaleMode;
    this.fitLabels();
  }
}
