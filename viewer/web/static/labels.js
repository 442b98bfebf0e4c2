// In-scene labels: one canvas-texture sprite per device that has something to say
// (its tag and value, or its tag and what is wrong), drawn at a fixed on-screen size
// over the geometry (never hidden behind pipes), redrawn only when the text or state
// changes. LabelLayout decides which labels show when they overlap: the more
// important wins, and a label of a device in alarm, offline or bad always shows.
import * as THREE from 'three';

const H = 64;
const FONT = '600 34px "DejaVu Sans", system-ui, sans-serif';
const TAG_FONT = '700 34px "DejaVu Sans", system-ui, sans-serif';
export const COLORS = { good: '#1f2a33', stale: '#6b4f00', bad: '#a61e9e', offline: '#343a40', alarm: '#c92a2a', nodata: '#56616d' };

export class LabelSprite {
  constructor() {
    this.canvas = document.createElement('canvas');
    this.canvas.width = 256;
    this.canvas.height = H;
    this.texture = new THREE.CanvasTexture(this.canvas);
    this.texture.colorSpace = THREE.SRGBColorSpace;
    this.texture.minFilter = THREE.LinearFilter;
    this.texture.generateMipmaps = false;
    this.material = new THREE.SpriteMaterial({ map: this.texture, transparent: true, depthWrite: false, depthTest: false, sizeAttenuation: false });
    this.sprite = new THREE.Sprite(this.material);
    this.sprite.center.set(0.5, 0);
    this.sprite.renderOrder = 10;
    this.text = null;
    this.tag = null;
    this.tone = null;
    this.aspect = 4;
    this.pixels = 22; // on-screen height in CSS pixels
    this.wanted = false; // has something to show
  }

  /** Draw tag + text; tone is 'good', 'stale', 'bad', 'offline', 'alarm' or 'nodata'. */
  set(tag, text, tone) {
    if (text === this.text && tag === this.tag && tone === this.tone) return false;
    this.text = text;
    this.tag = tag;
    this.tone = tone;
    this.wanted = !!(tag || text);
    if (!this.wanted) { this.sprite.visible = false; return true; }
    const ctx = this.canvas.getContext('2d');
    ctx.font = TAG_FONT;
    const tagW = tag ? ctx.measureText(tag).width : 0;
    ctx.font = FONT;
    const textW = text ? ctx.measureText(text).width : 0;
    const gap = tag && text ? 16 : 0;
    const W = Math.ceil(Math.min(1024, tagW + gap + textW + 32));
    if (this.canvas.width !== W) this.canvas.width = W;
    ctx.clearRect(0, 0, W, H);
    const color = COLORS[tone] || COLORS.good;
    const strong = tone === 'alarm' || tone === 'offline' || tone === 'bad';
    ctx.fillStyle = strong ? color : 'rgba(255,255,255,0.92)';
    roundRect(ctx, 2, 4, W - 4, H - 8, 12);
    ctx.fill();
    ctx.lineWidth = 3;
    ctx.strokeStyle = color;
    if (tone === 'stale' || tone === 'nodata') ctx.setLineDash([8, 6]);
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.textBaseline = 'middle';
    ctx.textAlign = 'left';
    ctx.fillStyle = strong ? '#fff' : color;
    ctx.font = TAG_FONT;
    if (tag) ctx.fillText(tag, 16, H / 2 + 1);
    ctx.font = FONT;
    if (text) ctx.fillText(text, 16 + tagW + gap, H / 2 + 1);
    this.aspect = W / H;
    this.texture.dispose(); // the canvas size may have changed: a new GPU texture
    this.texture.needsUpdate = true;
    return true;
  }

  /** Keep the label `pixels` tall on a screen `viewHeight` CSS pixels high (fov in degrees). */
  fit(viewHeight, fov, parentScale = 1) {
    // sprites inherit their parent's scale: undo the site's scale (headset model view)
    const s = (this.pixels * 2 * Math.tan(THREE.MathUtils.degToRad(fov) / 2)) / Math.max(1, viewHeight) / parentScale;
    this.sprite.scale.set(s * this.aspect, s, 1);
  }

  dispose() {
    this.texture.dispose();
    this.material.dispose();
  }
}

const RANK = { alarm: 0, offline: 1, bad: 2, stale: 4, nodata: 5, good: 6 };

/**
 * Which labels show: sorted by importance (selected, alarm, offline, bad, hovered,
 * then nearer first), a label that overlaps one already placed yields, except
 * that alarm, offline and bad labels always show.
 */
export function layoutLabels(entries, camera, width, height) {
  const placed = [];
  const v = new THREE.Vector3();
  const list = [];
  for (const e of entries) {
    const { label } = e;
    if (!label.wanted) { label.sprite.visible = false; continue; }
    v.setFromMatrixPosition(label.sprite.matrixWorld).project(camera);
    if (v.z > 1 || v.z < -1 || Math.abs(v.x) > 1.2 || Math.abs(v.y) > 1.2) { label.sprite.visible = false; continue; }
    const x = (v.x + 1) / 2 * width;
    const y = (1 - v.y) / 2 * height;
    const h = label.pixels;
    const w = h * label.aspect;
    const must = e.selected || label.tone === 'alarm' || label.tone === 'offline' || label.tone === 'bad';
    const rank = e.selected ? -1 : e.hovered ? 3 : (RANK[label.tone] ?? 6);
    list.push({ label, must, rank, z: v.z, box: [x - w / 2, y - h, x + w / 2, y] });
  }
  list.sort((a, b) => a.rank - b.rank || a.z - b.z);
  let shown = 0;
  for (const item of list) {
    // keep the whole label inside the view (never under the page's bars or cut at an edge)
    const [bx0, by0, bx1, by1] = item.box;
    const w = bx1 - bx0;
    const h = by1 - by0;
    const dx = bx0 < 2 ? 2 - bx0 : bx1 > width - 2 ? width - 2 - bx1 : 0;
    const dy = by0 < 2 ? 2 - by0 : by1 > height - 2 ? height - 2 - by1 : 0;
    item.label.sprite.center.set(0.5 - dx / w, 0 + dy / h);
    item.box = [bx0 + dx, by0 + dy, bx1 + dx, by1 + dy];
    const [x0, y0, x1, y1] = item.box;
    const clash = placed.some(([a0, b0, a1, b1]) => x0 < a1 && x1 > a0 && y0 < b1 && y1 > b0);
    const show = item.must || !clash;
    item.label.sprite.visible = show;
    item.label.screen = show ? { x: (x0 + x1) / 2, y: (y0 + y1) / 2, w: x1 - x0, h: y1 - y0 } : null;
    if (show) { placed.push(item.box); shown += 1; }
  }
  return shown;
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
