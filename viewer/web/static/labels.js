// In-scene labels: one canvas-texture sprite per labelled device, redrawn only when
// its text or state changes. They work the same on a screen and in a headset
// (HTML does not exist in an immersive session).
import * as THREE from 'three';

const W = 512;
const H = 96;
const FONT = '600 44px "DejaVu Sans", system-ui, sans-serif';

export class LabelSprite {
  constructor(height) {
    this.canvas = document.createElement('canvas');
    this.canvas.width = W;
    this.canvas.height = H;
    this.texture = new THREE.CanvasTexture(this.canvas);
    this.texture.colorSpace = THREE.SRGBColorSpace;
    this.material = new THREE.SpriteMaterial({ map: this.texture, transparent: true, depthWrite: false });
    this.sprite = new THREE.Sprite(this.material);
    this.sprite.center.set(0.5, 0);
    this.sprite.renderOrder = 10;
    this.height = height;
    this.text = null;
    this.tone = null;
  }

  /** Draw text; tone is 'good', 'stale', 'bad', 'offline' or 'alarm'. */
  set(text, tone) {
    if (text === this.text && tone === this.tone) return false;
    this.text = text;
    this.tone = tone;
    const ctx = this.canvas.getContext('2d');
    ctx.clearRect(0, 0, W, H);
    if (!text) {
      this.sprite.visible = false;
      this.texture.needsUpdate = true;
      return true;
    }
    ctx.font = FONT;
    const width = Math.min(W - 8, ctx.measureText(text).width + 36);
    const x = (W - width) / 2;
    const colors = { good: '#1f2a33', stale: '#6b5a12', bad: '#7a1080', offline: '#4a4a4a', alarm: '#b00000' };
    ctx.fillStyle = 'rgba(255,255,255,0.88)';
    roundRect(ctx, x, 8, width, H - 16, 18);
    ctx.fill();
    ctx.lineWidth = 4;
    ctx.strokeStyle = colors[tone] || colors.good;
    ctx.stroke();
    ctx.fillStyle = colors[tone] || colors.good;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.fillText(text, W / 2, H / 2 + 2, W - 40);
    this.texture.needsUpdate = true;
    this.sprite.visible = true;
    this.sprite.scale.set(this.height * (W / H), this.height, 1);
    return true;
  }

  dispose() {
    this.texture.dispose();
    this.material.dispose();
  }
}

export function roundRect(ctx, x, y, w, h, r) {
  ctx.beginPath();
  ctx.moveTo(x + r, y);
  ctx.arcTo(x + w, y, x + w, y + h, r);
  ctx.arcTo(x + w, y + h, x, y + h, r);
  ctx.arcTo(x, y + h, x, y, r);
  ctx.arcTo(x, y, x + w, y, r);
  ctx.closePath();
}
