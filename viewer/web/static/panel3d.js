// The headset panel: a canvas texture on a plane with the selected device's live
// values and its command buttons, hit-tested by the controller ray (uv -> canvas).
// Commands with confirm=true take a second press on a Confirm button.
import * as THREE from 'three';
import { roundRect } from './labels.js';
import { age, commandStateText, commandVariants, formatValue } from './format.js';

const CW = 768;
const CH = 640;
const WIDTH = 0.72; // metres
const HEIGHT = WIDTH * (CH / CW);
const QUALITY_COLORS = { good: '#2b8a3e', stale: '#8f6a00', 'no data': '#6c757d', bad: '#a61e9e', offline: '#343a40' };

export class Panel3D {
  constructor() {
    this.canvas = document.createElement('canvas');
    this.canvas.width = CW;
    this.canvas.height = CH;
    this.texture = new THREE.CanvasTexture(this.canvas);
    this.texture.colorSpace = THREE.SRGBColorSpace;
    // Opaque with alphaTest (rounded corners): it writes depth, so nothing shows through it.
    const material = new THREE.MeshBasicMaterial({ map: this.texture, alphaTest: 0.5, side: THREE.DoubleSide });
    this.mesh = new THREE.Mesh(new THREE.PlaneGeometry(WIDTH, HEIGHT), material);
    this.mesh.name = 'twinview-panel';
    this.mesh.visible = false;
    this.mesh.renderOrder = 20;
    this.device = null; // DeviceVisual
    this.buttons = []; // { label, x, y, w, h, action }
    this.confirming = null; // variant awaiting confirmation
    this.status = '';
    this.role = null;
  }

  open(visual, role) {
    this.device = visual;
    this.role = role;
    this.confirming = null;
    this.status = '';
    this.mesh.visible = true;
    this.draw();
  }

  close() {
    this.device = null;
    this.confirming = null;
    this.mesh.visible = false;
  }

  /** Face the viewer: in front of the head, a little low, turned towards it. */
  placeBefore(camera) {
    const head = new THREE.Vector3().setFromMatrixPosition(camera.matrixWorld);
    const forward = new THREE.Vector3(0, 0, -1).applyQuaternion(camera.getWorldQuaternion(new THREE.Quaternion()));
    forward.y = 0;
    if (forward.lengthSq() < 1e-6) forward.set(0, 0, -1);
    forward.normalize();
    this.mesh.position.copy(head).addScaledVector(forward, 1.0);
    this.mesh.position.y = head.y - 0.15;
    this.mesh.lookAt(head.x, this.mesh.position.y, head.z);
    this.mesh.updateMatrixWorld(true);
  }

  draw() {
    const ctx = this.canvas.getContext('2d');
    ctx.clearRect(0, 0, CW, CH);
    ctx.fillStyle = '#f7f9fb';
    roundRect(ctx, 2, 2, CW - 4, CH - 4, 24);
    ctx.fill();
    ctx.strokeStyle = '#7d8a97';
    ctx.lineWidth = 4;
    ctx.stroke();
    this.buttons = [];
    const v = this.device;
    if (!v) { this.texture.needsUpdate = true; return; }
    const info = v.info;
    ctx.fillStyle = '#1c232b';
    ctx.textBaseline = 'top';
    ctx.font = '600 40px "DejaVu Sans", sans-serif';
    ctx.fillText(info.name, 28, 22, CW - 140);
    ctx.font = '26px "DejaVu Sans", sans-serif';
    ctx.fillStyle = '#56616d';
    ctx.fillText([info.id, info.type, info.area].filter(Boolean).join(' · '), 28, 70, CW - 60);
    this.addButton(ctx, '✕', CW - 92, 20, 64, 52, { kind: 'close' });

    let y = 116;
    ctx.font = '28px "DejaVu Sans", sans-serif';
    const points = (v.entry && v.entry.points) || {};
    for (const p of info.points.slice(0, 6)) {
      const rec = points[p.id] || { v: null, q: 'no data', t: null };
      const q = v.connected === false && rec.q === 'good' ? 'stale' : rec.q;
      ctx.fillStyle = '#1c232b';
      ctx.fillText(p.label || p.id, 28, y, 280);
      ctx.fillText(formatValue(p, rec.v), 320, y, 220);
      ctx.fillStyle = QUALITY_COLORS[q] || '#333';
      ctx.fillText(q, 560, y, 110);
      if (rec.a) { ctx.fillStyle = '#c92a2a'; ctx.fillText('ALARM', 672, y, 80); }
      y += 40;
    }
    if (info.points.length > 6) {
      ctx.fillStyle = '#56616d';
      ctx.fillText(`+ ${info.points.length - 6} more`, 28, y);
      y += 40;
    }
    y += 8;
    if (this.confirming) {
      ctx.fillStyle = '#1c232b';
      ctx.font = '600 30px "DejaVu Sans", sans-serif';
      const left = Math.max(0, Math.ceil((this.confirmUntil - Date.now()) / 1000));
      ctx.fillText(`Confirm: ${this.confirming.label}? (${left} s)`, 28, y, CW - 56);
      y += 48;
      this.addButton(ctx, 'Confirm', 28, y, 220, 64, { kind: 'confirm' }, '#b04040');
      this.addButton(ctx, 'Cancel', 268, y, 220, 64, { kind: 'cancel' });
      y += 80;
    } else {
      let x = 28;
      for (const cmd of info.commands) {
        for (const variant of commandVariants(cmd, points, info)) {
          if (variant.disabled || this.blocked) continue;
          ctx.font = '28px "DejaVu Sans", sans-serif';
          const w = Math.min(CW - 56, Math.max(160, ctx.measureText(variant.label).width + 40));
          if (x + w > CW - 28) { x = 28; y += 76; }
          if (y > CH - 130) break;
          this.addButton(ctx, variant.label, x, y, w, 64, { kind: 'command', variant }, variant.confirm ? '#b04040' : null);
          x += w + 14;
        }
      }
      if (this.blocked && info.commands.length) {
        ctx.font = '26px "DejaVu Sans", sans-serif';
        ctx.fillStyle = '#8b1a1a';
        ctx.fillText(`Commands: ${this.blocked}`, 28, y, CW - 56);
      }
      y += 80;
    }
    if (this.status) {
      ctx.font = '26px "DejaVu Sans", sans-serif';
      ctx.fillStyle = this.status.includes('refused') || this.status.includes('rejected') ? '#a01818' : '#1c232b';
      ctx.fillText(this.status, 28, Math.min(y, CH - 60), CW - 56);
    }
    const ts = Object.values(points).map((r) => r.t).filter((t) => t !== null && t !== undefined);
    if (ts.length) {
      ctx.font = '22px "DejaVu Sans", sans-serif';
      ctx.fillStyle = '#56616d';
      ctx.fillText(`updated ${age(Math.max(...ts))}`, 28, CH - 34);
    }
    this.texture.needsUpdate = true;
  }

  addButton(ctx, label, x, y, w, h, action, border = null) {
    ctx.fillStyle = '#e8edf2';
    roundRect(ctx, x, y, w, h, 12);
    ctx.fill();
    ctx.strokeStyle = border || '#7d8a97';
    ctx.lineWidth = 3;
    ctx.stroke();
    ctx.fillStyle = '#1c232b';
    ctx.font = '28px "DejaVu Sans", sans-serif';
    ctx.textBaseline = 'middle';
    ctx.textAlign = 'center';
    ctx.fillText(label, x + w / 2, y + h / 2, w - 16);
    ctx.textAlign = 'left';
    ctx.textBaseline = 'top';
    this.buttons.push({ label, x, y, w, h, action });
  }

  /** The button under a ray hit's uv, or null. */
  hit(uv) {
    const x = uv.x * CW;
    const y = (1 - uv.y) * CH;
    return this.buttons.find((b) => x >= b.x && x <= b.x + b.w && y >= b.y && y <= b.y + b.h) || null;
  }

  /** World position of a button's centre (tests aim the controller there). */
  buttonWorldPosition(label) {
    const b = this.buttons.find((btn) => btn.label === label || btn.label.startsWith(label));
    if (!b) return null;
    const local = new THREE.Vector3(((b.x + b.w / 2) / CW - 0.5) * WIDTH, (0.5 - (b.y + b.h / 2) / CH) * HEIGHT, 0);
    this.mesh.updateMatrixWorld(true);
    return local.applyMatrix4(this.mesh.matrixWorld);
  }

  setStatus(state) {
    this.status = typeof state === 'string' ? state : commandStateText(state);
    if (this.device) this.draw();
  }
}
