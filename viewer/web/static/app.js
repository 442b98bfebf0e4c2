// twinview in the browser and in headsets: the live site over the bridge's websocket.
//
// Desktop and tablet: a device list with search, a status summary, orbit / fly-to /
// fit, hover names, an inspector with values, trend, commands and their log.
// Immersive (WebXR VR or AR): the same scene; a controller ray selects a device and
// opens an in-scene panel with live values and commands (xr.js).
// window.twinview exposes state for tests and debugging.
import * as THREE from 'three';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';
import { Alarms } from './alarms.js';
import { Banner, clock, duration } from './banner.js';
import { CameraMover } from './camera.js';
import { CommandLog } from './commandlog.js';
import { Connection, bridgeUrl } from './connection.js';
import { DeviceList } from './devicelist.js';
import { commandStateText } from './format.js';
import { LabelSprite, layoutLabels } from './labels.js';
import { buildLegend } from './legend.js';
import { DeviceVisual } from './looks.js';
import { Panel3D } from './panel3d.js';
import { SidePanel } from './sidepanel.js';
import { KINDS, KIND_WORD, StatusSummary, kindsOf, mainKind, reason } from './status.js';
import { Timeline } from './timeline.js';
import { Trend } from './trend.js';
import { setupKeys } from './keys.js';
import { pickDevice } from './picking.js';
import { installHook } from './testhook.js';
import { XRSupport } from './xr.js';

const MAX_LABELS = 400; // beyond this only selected, alarmed, offline or bad devices carry a label
const ANIMATION_FPS = 15; // moving parts are drawn at most this often; an idle page draws nothing
const BACKGROUND = new THREE.Color('#c9d3de');
const $ = (id) => document.getElementById(id);

const hook = {
  ready: false, connected: false, live: false, error: null, seq: -1, snapshots: 0, deltas: 0, frames: 0, renderedSeq: -1,
  user: null, role: null, selectedDevice: null, hoveredDevice: null, errors: [], results: [], commandStates: [],
  counts: {}, announcements: [], histories: 0, mode: 'live', pastAt: null,
  xr: { supported: { vr: false, ar: false }, presenting: false, mode: null, selects: 0 },
};
window.twinview = hook;

let info = null;
let renderer; let scene; let camera; let controls; let siteRoot; let mover;
const visuals = new Map(); // device id -> DeviceVisual
const pickables = [];
const labels = new Map(); // device id -> LabelSprite
const animated = new Set(); // visuals that spin or pulse
let dirty = true;
let labelsDirty = true;
let connection = null;
let sidePanel = null;
let deviceList = null;
let summary = null;
let banner = null;
let trend = null;
let xr = null;
let timeline = null; // the history slider (created once the connection exists)
const commandLog = new CommandLog();
const panel3d = new Panel3D();
// The alarm list (page, headset panel, area badges): alarms.js; these few lines hook it in.
const alarms = new Alarms({ send: (m) => (connection ? connection.send(m) : false), select: (id) => select(id, { fly: true }), role: () => hook.role });
hook.alarms = alarms;
const raycaster = new THREE.Raycaster();
let lastTime = null;
let lastDraw = 0;
let drawMs = 0; // average cost of a frame: motion is drawn at most a quarter of the time, so input stays responsive
let viewSize = { w: 1, h: 1 };

function toast(text) {
  const t = $('toast');
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 4000);
}

/** Say something to screen readers (assertive for alarms). */
function announce(text, urgent = false) {
  hook.announcements.push(text);
  if (hook.announcements.length > 50) hook.announcements.shift();
  const region = $(urgent ? 'announce-alarm' : 'announce');
  region.textContent = '';
  setTimeout(() => { region.textContent = text; }, 30);
}

// --- connection and trust ----------------------------------------------------------------

function setStatus(connected, detail) {
  hook.connected = connected;
  const s = $('status');
  if (connected) {
    s.className = 'status offline';
    s.textContent = 'connecting…';
    return; // live once the snapshot arrives
  }
  s.className = 'status offline';
  s.textContent = `no connection${detail ? ': ' + detail : ''}`;
  hook.user = null;
  hook.role = null;
  $('user').textContent = '';
  if (hook.live || !banner.everConnected) {
    hook.live = false;
    hook.lostAt = Date.now();
    banner.lost(detail);
    refreshAll();
  }
}

function goneLive() {
  const wasLive = hook.live;
  hook.live = true;
  const s = $('status');
  s.className = 'status online';
  s.textContent = 'live';
  if (!wasLive) banner.connected();
}

/** Re-apply every device (the link changed: stale everywhere, or live again). */
function refreshAll() {
  for (const [id, v] of visuals) applyEntry(id, v.entry);
  if (sidePanel) sidePanel.refresh();
  if (panel3d.device) { panel3d.blocked = xr ? xr.blockedReason() : ''; panel3d.draw(); }
  dirty = true;
}

// --- scene ---------------------------------------------------------------------------

async function loadSite() {
  const response = await fetch('site.json', { cache: 'no-cache' });
  if (!response.ok) throw new Error(`site.json: HTTP ${response.status}`);
  info = await response.json();
  document.title = `${info.name} · twinview`;
  $('site-name').textContent = info.name;

  renderer = new THREE.WebGLRenderer({ antialias: true, alpha: true });
  renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
  renderer.xr.enabled = true;
  renderer.xr.setReferenceSpaceType('local-floor');
  $('viewport').prepend(renderer.domElement);
  renderer.domElement.setAttribute('aria-label', `3D view of ${info.name}`);
  renderer.domElement.tabIndex = -1;

  scene = new THREE.Scene();
  scene.background = BACKGROUND;
  scene.add(new THREE.HemisphereLight(0xffffff, 0x8a8f96, 2.2));
  const sun = new THREE.DirectionalLight(0xffffff, 1.6);
  sun.position.set(0.5, 1.0, 0.35);
  scene.add(sun);

  siteRoot = new THREE.Group();
  siteRoot.name = 'site';
  scene.add(siteRoot);
  scene.add(panel3d.mesh);

  const gltf = await new GLTFLoader().loadAsync(info.glb || 'site.glb');
  siteRoot.add(gltf.scene);
  bindDevices(gltf.scene);
  alarms.attachScene(siteRoot, visuals);
  scene.add(alarms.panel.mesh);

  camera = new THREE.PerspectiveCamera(45, 1, 0.05, 5000);
  controls = new OrbitControls(camera, renderer.domElement);
  controls.zoomToCursor = true;
  controls.screenSpacePanning = true;
  controls.addEventListener('change', () => { dirty = true; labelsDirty = true; });
  controls.addEventListener('start', () => mover.stop());
  mover = new CameraMover(camera, controls, () => { dirty = true; labelsDirty = true; });
  resize();
  mover.fit(siteBounds(), info.camera, false);

  new ResizeObserver(() => resize()).observe($('viewport'));
  window.addEventListener('resize', () => resize());
  setupPointer();
  xr = new XRSupport({
    renderer, scene, camera, controls, siteRoot, panel3d, raycaster, hook, siteBounds,
    pick: pickFromRay, select, sendCommand, sidePanel, visuals, background: BACKGROUND, onResize: (force) => resize(force),
    markDirty: () => { dirty = true; },
    alarms,
    fitLabels: () => fitLabels(),
  });
  renderer.setAnimationLoop(frame);
}

function bindDevices(root) {
  const byId = new Map(info.devices.map((d) => [d.id, d]));
  let material = null;
  root.traverse((obj) => { if (!material && obj.isMesh) material = obj.material; });
  material = material || new THREE.MeshStandardMaterial({ vertexColors: true, metalness: 0, roughness: 0.8 });
  const groups = [];
  root.traverse((obj) => {
    const id = obj.userData.device;
    if (id !== undefined && obj.userData.part === undefined && byId.has(id)) groups.push(obj);
  });
  for (const group of groups) {
    const visual = new DeviceVisual(byId.get(group.userData.device), group, material);
    group.traverse((obj) => {
      if (obj.isMesh) { visual.addMesh(obj); pickables.push(obj); }
      if (obj.userData.motion !== undefined) visual.addPart(obj.userData.motion, obj);
    });
    visual.measure(siteRoot);
    visual.apply(null);
    visuals.set(visual.id, visual);
  }
  const labelled = info.devices.filter((d) => d.label_points.length && visuals.has(d.id));
  hook.devices = [...visuals.keys()];
  hook.labelsAll = labelled.length <= MAX_LABELS;
}

/** The part of the site that matters: every device (plus a small margin), not the whole ground plane. */
function siteBounds() {
  let box = new THREE.Box3();
  for (const v of visuals.values()) box.union(v.box);
  if (box.isEmpty()) box = new THREE.Box3(new THREE.Vector3().fromArray(info.bounds[0]), new THREE.Vector3().fromArray(info.bounds[1]));
  const size = box.getSize(new THREE.Vector3());
  box.expandByScalar(Math.max(0.5, size.length() * 0.04));
  const lo = box.min.toArray();
  const hi = box.max.toArray();
  const center = box.getCenter(new THREE.Vector3());
  const radius = Math.max(0.5, box.getSize(new THREE.Vector3()).length() / 2);
  return { lo, hi, center, radius };
}

/** Labels keep their on-screen size; in a headset they are as large as on a 500 px screen and only
 *  selected, alarm, offline and bad devices keep theirs (a model of the whole plant is small). */
function fitLabel(label) {
  const xr = renderer && renderer.xr.isPresenting;
  label.fit(xr ? 500 : viewSize.h, camera ? camera.fov : 45, siteRoot ? siteRoot.scale.x : 1);
  if (xr) label.sprite.center.set(0.5, 0);
  if (xr) label.sprite.visible = label.wanted && (label.tone !== 'good' && label.tone !== 'stale' && label.tone !== 'nodata' || label.tag === hook.selectedDevice);
}

function fitLabels() {
  for (const label of labels.values()) fitLabel(label);
  labelsDirty = true;
}

function resize(force = false) {
  if (!renderer || renderer.xr.isPresenting) return; // the headset decides the size
  const box = $('viewport');
  const w = Math.max(1, box.clientWidth);
  const h = Math.max(1, box.clientHeight);
  if (!force && w === viewSize.w && h === viewSize.h) return;
  viewSize = { w, h };
  camera.aspect = w / h;
  camera.updateProjectionMatrix();
  renderer.setSize(w, h);
  fitLabels();
  dirty = true;
  labelsDirty = true;
}

// --- live state ------------------------------------------------------------------------

function labelTone(kinds) {
  const main = mainKind(kinds);
  return main === 'ok' ? 'good' : main;
}

function updateLabel(visual, kinds) {
  const entry = visual.entry;
  const main = mainKind(kinds);
  const important = main === 'alarm' || main === 'offline' || main === 'bad';
  const hasValue = visual.info.label_points.length > 0;
  const show = visual.selected || important || (hook.labelsAll && hasValue);
  let text = '';
  if (show) {
    if (main === 'offline') text = 'OFFLINE';
    else if (main === 'alarm') text = hasValue && entry && entry.label ? `${entry.label} · ALARM` : 'ALARM';
    else if (main === 'bad') text = hasValue && entry && entry.label ? `${entry.label} · BAD` : 'BAD VALUE';
    else text = entry && entry.label ? entry.label : (hasValue ? '—' : '');
    if (!hook.live && text && !text.includes('stale')) text += ' (stale)';
  }
  let label = labels.get(visual.id);
  if (!show && !label) return;
  if (!label) {
    label = new LabelSprite();
    const top = visual.box.getCenter(new THREE.Vector3());
    top.y = visual.box.max.y;
    label.sprite.position.copy(top);
    label.sprite.name = `label ${visual.id}`;
    fitLabel(label);
    siteRoot.add(label.sprite);
    labels.set(visual.id, label);
  }
  if (label.set(show ? visual.id : '', text, labelTone(kinds))) { fitLabel(label); labelsDirty = true; }
}

let statusTimer = null;
function statusChanged() {
  if (statusTimer) return;
  statusTimer = setTimeout(() => { statusTimer = null; recount(); }, 150);
}

const kindCache = new Map(); // id -> Set of kinds (to announce new alarms)
let firstCount = true;

function recount() {
  const counts = Object.fromEntries(KINDS.map((k) => [k, 0]));
  const newAlarms = [];
  for (const [id, v] of visuals) {
    const kinds = kindsOf(v.entry, hook.live);
    for (const k of kinds) counts[k] += 1;
    const before = kindCache.get(id);
    if (kinds.has('alarm') && hook.live && !firstCount && !(before && before.has('alarm'))) newAlarms.push(v);
    if (hook.live || !before) kindCache.set(id, kinds);
  }
  hook.counts = counts;
  summary.update(counts);
  if (hook.live && firstCount) {
    firstCount = false;
    const parts = KINDS.filter((k) => counts[k]).map((k) => `${counts[k]} ${KIND_WORD[k]}`);
    announce(parts.length ? `Plant status: ${parts.join(', ')}.` : 'Plant status: all devices current.', counts.alarm > 0);
  }
  for (const v of newAlarms) announce(`Alarm: ${v.id} ${v.info.name}, ${reason(v.info, v.entry, 'alarm')}`, true);
  if (deviceList && deviceList.kind) deviceList.render();
}

function applyEntry(id, entry) {
  const visual = visuals.get(id);
  if (!visual) return;
  visual.apply(entry, hook.live);
  if (visual.spinning || visual.pulsing) animated.add(visual); else animated.delete(visual);
  const kinds = kindsOf(entry, hook.live);
  updateLabel(visual, kinds);
  if (deviceList) deviceList.setStatus(id, kinds, mainKind(kinds), (k) => reason(visual.info, entry, k));
  if (sidePanel && sidePanel.visual === visual) sidePanel.refresh();
  if (panel3d.device === visual) panel3d.draw();
  if (entry && trend && trend.device === id) {
    for (const [pid, rec] of Object.entries(entry.points || {})) trend.add(id, pid, rec.t, rec.v);
  }
  statusChanged();
}

/** Counted errors on the server (bad payloads, audit writes, handlers): a number in the bar, the detail on hover. */
function showErrors(status) {
  const box = $('errors');
  const entries = Object.entries(status.errors || {});
  const total = entries.reduce((n, [, v]) => n + v, 0);
  box.hidden = total === 0;
  box.textContent = `${total} counted error${total === 1 ? '' : 's'}`;
  box.title = entries.map(([k, v]) => `${k.replaceAll('_', ' ')}: ${v}`).join('\n') +
    (status.last_error ? `\nlast: ${status.last_error}` : '');
}

/** A data source (connector) of the server that is down: a red pill naming it; announced once. */
const linksDown = new Map(); // name -> since (ms)
function showLinks(links) {
  const now = Date.now();
  for (const [name, link] of Object.entries(links)) {
    const down = link.state === 'down';
    if (down && !linksDown.has(name)) {
      linksDown.set(name, now);
      announce(`Data source ${name} is down${link.detail ? ` (${link.detail})` : ''}: its values turn stale.`, true);
    } else if (!down && linksDown.has(name)) {
      announce(`Data source ${name} is up again after ${duration(now - linksDown.get(name))}.`);
      linksDown.delete(name);
    }
  }
  for (const name of [...linksDown.keys()]) if (!(name in links)) linksDown.delete(name);
  const box = $('links');
  box.hidden = linksDown.size === 0;
  box.textContent = [...linksDown].map(([name, since]) => `${name} down since ${clock(since)}`).join(' · ');
  box.title = Object.entries(links).filter(([, l]) => l.state === 'down').map(([n, l]) => `${n}: ${l.detail || 'down'}`).join('\n');
}

function onMessage(msg) {
  if (alarms.handle(msg)) { dirty = true; return; }
  switch (msg.type) {
    case 'hello':
      hook.hello = msg;
      hook.actuation = msg.actuation;
      break;
    case 'snapshot': {
      hook.snapshots += 1;
      hook.mode = 'live';
      hook.pastAt = null;
      if (timeline) timeline.showLive();
      goneLive();
      const seen = new Set(Object.keys(msg.devices));
      for (const [id, visual] of visuals) if (!seen.has(id) && visual.entry) applyEntry(id, null);
      for (const [id, entry] of Object.entries(msg.devices)) applyEntry(id, entry);
      for (const [id, visual] of visuals) if (!seen.has(id)) applyEntry(id, visual.entry);
      if (msg.commands) for (const s of msg.commands) onCommandState(s, false);
      hook.seq = msg.seq;
      if (sidePanel.visual) { requestCommandLog(sidePanel.visual.id); sidePanel.refresh(); if (trend.point) { trend.device = null; trend.show(sidePanel.visual.id, trend.point); } }
      dirty = true;
      break;
    }
    case 'delta':
      hook.deltas += 1;
      for (const [id, entry] of Object.entries(msg.devices)) applyEntry(id, entry);
      hook.seq = msg.seq;
      dirty = true;
      break;
    case 'auth_ok':
      hook.user = msg.user;
      hook.role = msg.role;
      $('user').textContent = `${msg.user} (${msg.role})`;
      $('login-open').textContent = 'Account';
      alarms.refresh();
      toast(`logged in as ${msg.user} (${msg.role})`);
      sidePanel.refresh();
      if (panel3d.device) { panel3d.blocked = xr.blockedReason(); panel3d.draw(); }
      break;
    case 'status':
      hook.status = msg;
      showErrors(msg);
      showLinks(msg.links || {});
      if (timeline) timeline.status(msg.history);
      break;
    case 'past': {
      hook.mode = 'past';
      hook.pastAt = msg.at;
      for (const [id, entry] of Object.entries(msg.devices)) applyEntry(id, entry);
      if (timeline) timeline.showPast(msg);
      if (sidePanel) sidePanel.refresh();
      $('status').className = 'status past';
      $('status').textContent = 'past';
      dirty = true;
      break;
    }
    case 'command_queued':
      break;
    case 'command_result':
      hook.results.push(msg);
      commandLog.result(msg);
      showCommandState(msg, true);
      break;
    case 'command_state':
      onCommandState(msg, true);
      break;
    case 'history':
      hook.histories += 1;
      trend.history(msg);
      break;
    case 'command_log':
      commandLog.past(msg.device, msg.commands);
      if (sidePanel.visual && sidePanel.visual.id === msg.device) sidePanel.renderLog();
      break;
    case 'error':
      hook.errors.push(msg);
      if (msg.code === 'auth_failed' || msg.code === 'no_actuation') toast(msg.message);
      if (msg.ref && String(msg.ref).startsWith('c')) {
        const s = { ...msg, state: 'refused', reason: msg.message, ok: false };
        commandLog.result(s);
        showCommandState(s, true);
      }
      break;
    default:
      break;
  }
}

function onCommandState(s, live) {
  hook.commandStates.push(s);
  if (hook.commandStates.length > 200) hook.commandStates.shift();
  commandLog.state(s);
  if (live) showCommandState(s, false);
  else if (sidePanel && sidePanel.visual && sidePanel.visual.id === s.device) sidePanel.renderLog();
}

function showCommandState(s, ours) {
  const selected = hook.selectedDevice;
  if (sidePanel && sidePanel.visual && (!s.device || s.device === sidePanel.visual.id)) sidePanel.renderLog();
  if (panel3d.device && (!s.device || s.device === panel3d.device.id)) panel3d.setStatus(s);
  const text = commandStateText(s) + (s.user && !ours ? ` (${s.user})` : '');
  if (ours || (s.user && s.user === hook.user) || s.final) announce(text);
  if (!s.device || !selected) toast(text);
  dirty = true;
}

function sendCommand(device, command, args, confirmed) {
  if (hook.mode === 'past') { // the past cannot be commanded (the headset panel and the page alike)
    const text = `${command}: not sent: showing the past; press Live first`;
    if (panel3d.device) panel3d.setStatus(text);
    toast(text);
    return null;
  }
  const ref = connection.command(device, command, args, confirmed);
  commandLog.local(device, command, args, hook.user || '', ref, ref ? 'requested' : 'not sent', ref ? '' : 'no connection to the server');
  if (sidePanel && sidePanel.visual) sidePanel.renderLog();
  if (panel3d.device) panel3d.setStatus(ref ? `${command}: requested` : `${command}: not sent (offline)`);
  announce(ref ? `${command} on ${device}: requested` : `${command} on ${device}: not sent, no connection`);
  return ref;
}

function requestCommandLog(device) {
  return connection ? connection.send({ type: 'command_log', device, ref: `l-${device}` }) : false;
}

function requestHistory(device, point, since = null) {
  const msg = { type: 'history', device, point, ref: `h-${device}-${point}` };
  if (since) msg.since = since;
  return connection ? connection.send(msg) : false;
}

// --- selection, focus and picking --------------------------------------------------------

function select(id, { fly = false } = {}) {
  const previous = visuals.get(hook.selectedDevice);
  const visual = id ? visuals.get(id) : null;
  if (previous && previous !== visual) { previous.selected = false; previous.refreshEmissive(0); updateLabel(previous, kindsOf(previous.entry, hook.live)); }
  hook.selectedDevice = visual ? visual.id : null;
  if (visual) { visual.selected = true; visual.refreshEmissive(0); updateLabel(visual, kindsOf(visual.entry, hook.live)); }
  outline(visual);
  if (deviceList) deviceList.setCurrent(hook.selectedDevice);
  // the address names the selection: a link to the page opens this device
  const hash = hook.selectedDevice ? `#${encodeURIComponent(hook.selectedDevice)}` : '';
  if (window.location.hash !== hash) history.replaceState(null, '', `${window.location.pathname}${window.location.search}${hash}`);
  if (renderer.xr.isPresenting) {
    xr.selected(visual);
  } else {
    sidePanel.show(visual);
    if (visual) requestCommandLog(visual.id);
    if (visual && fly) focusDevice(visual.id);
  }
  labelsDirty = true;
  dirty = true;
}

let selectionBox = null;
/** An orange box around the selected device (a tint would change its state colour). */
function outline(visual) {
  if (selectionBox) { siteRoot.remove(selectionBox); selectionBox.geometry.dispose(); selectionBox = null; }
  if (!visual) return;
  const box = visual.box.clone();
  box.expandByScalar(Math.max(0.05, box.getSize(new THREE.Vector3()).length() * 0.03));
  selectionBox = new THREE.Box3Helper(box, 0xe8590c);
  selectionBox.material.depthTest = false;
  selectionBox.material.transparent = true;
  selectionBox.renderOrder = 9;
  selectionBox.name = 'selection';
  siteRoot.add(selectionBox);
}

function focusDevice(id) {
  const v = visuals.get(id || hook.selectedDevice);
  if (!v) return false;
  const box = v.box.clone().applyMatrix4(siteRoot.matrixWorld);
  mover.flyTo(box);
  return true;
}

function hover(id, event) {
  const tip = $('tooltip');
  if (id !== hook.hoveredDevice) {
    const previous = visuals.get(hook.hoveredDevice);
    if (previous) { previous.hovered = false; previous.refreshEmissive(0); }
    const visual = id ? visuals.get(id) : null;
    hook.hoveredDevice = visual ? visual.id : null;
    if (visual) { visual.hovered = true; visual.refreshEmissive(0); }
    renderer.domElement.style.cursor = visual ? 'pointer' : '';
    dirty = true;
  }
  const v = visuals.get(hook.hoveredDevice);
  if (!v || !event) { tip.hidden = true; return; }
  const kinds = kindsOf(v.entry, hook.live);
  const main = mainKind(kinds);
  tip.textContent = `${v.id} · ${v.info.name}${v.entry && v.entry.label ? ' — ' + v.entry.label : ''}${main !== 'ok' ? ' — ' + reason(v.info, v.entry, main) : ''}`;
  const rect = $('viewport').getBoundingClientRect();
  tip.hidden = false;
  const x = Math.min(event.clientX - rect.left + 14, rect.width - tip.offsetWidth - 4);
  const y = Math.max(4, event.clientY - rect.top - 34);
  tip.style.left = `${Math.max(4, x)}px`;
  tip.style.top = `${y}px`;
}

function pickFromRay() {
  return pickDevice(raycaster, pickables, visuals, siteRoot);
}

/** The device under a page position (CSS pixels), or null. */
function pickAt(x, y) {
  const rect = renderer.domElement.getBoundingClientRect();
  const ndc = new THREE.Vector2(((x - rect.left) / rect.width) * 2 - 1, -((y - rect.top) / rect.height) * 2 + 1);
  raycaster.setFromCamera(ndc, camera);
  return pickFromRay();
}

function setupPointer() {
  const el = renderer.domElement;
  const ndc = new THREE.Vector2();
  let down = null;
  let pendingMove = null;
  const pick = (event) => pickAt(event.clientX, event.clientY);
  el.addEventListener('pointermove', (e) => {
    if (renderer.xr.isPresenting || down || e.pointerType === 'touch') return;
    if (!pendingMove) requestAnimationFrame(() => { const m = pendingMove; pendingMove = null; if (m) hover(pick(m), m); });
    pendingMove = e;
  });
  el.addEventListener('pointerleave', () => hover(null, null));
  el.addEventListener('pointerdown', (e) => { down = { x: e.clientX, y: e.clientY }; });
  el.addEventListener('pointerup', (e) => {
    if (down && Math.hypot(e.clientX - down.x, e.clientY - down.y) < 8 && !renderer.xr.isPresenting) select(pick(e));
    down = null;
  });
  el.addEventListener('dblclick', (e) => { const id = pick(e); if (id) { select(id); focusDevice(id); } });
}

// --- drawers and controls ------------------------------------------------------------------

function narrow() { return window.matchMedia('(max-width: 900px)').matches; }

function showDevices(show) {
  $('devices').hidden = !show;
  $('devices-toggle').setAttribute('aria-expanded', String(show));
  resize();
}

function setupChrome() {
  $('devices-toggle').addEventListener('click', () => showDevices($('devices').hidden));
  $('home').addEventListener('click', () => mover.fit(siteBounds(), info.camera, true));
  $('legend-toggle').addEventListener('click', () => {
    const l = $('legend');
    l.hidden = !l.hidden;
    $('legend-toggle').setAttribute('aria-expanded', String(!l.hidden));
  });
  if (narrow()) showDevices(false);
}

function setupLogin() {
  const form = $('login');
  const open = (show) => { form.hidden = !show; $('login-open').setAttribute('aria-expanded', String(show)); if (show) $('token').focus(); };
  $('login-open').addEventListener('click', () => open(form.hidden));
  $('login-close').addEventListener('click', () => open(false));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const token = $('token').value.trim();
    $('token').value = '';
    open(false);
    if (token) connection.login(token); // the server keeps the session in an HttpOnly cookie
  });
  $('logout').addEventListener('click', () => {
    open(false);
    $('login-open').textContent = 'Log in';
    connection.login(null);
  });
}

// --- frame loop ---------------------------------------------------------------------------

let lastCallback = null;
let drewLast = false;

function frame(time) {
  // what a frame really costs shows in the gap to the next callback (the GPU works asynchronously)
  if (drewLast && lastCallback !== null) drawMs = drawMs * 0.7 + Math.min(time - lastCallback, 2000) * 0.3;
  lastCallback = time;
  drewLast = false;
  const dt = lastTime === null ? 0 : Math.min((time - lastTime) / 1000, 0.25);
  const presenting = renderer.xr.isPresenting;
  if (mover.step(time)) dirty = true;
  if (!presenting && !dirty) {
    // idle: nothing to draw; moving parts at a capped rate
    if (animated.size === 0 || time - lastDraw < Math.max(1000 / ANIMATION_FPS, drawMs * 4)) return;
  }
  lastTime = time;
  for (const v of animated) {
    v.advance(dt);
    if (v.pulsing) v.refreshEmissive(time / 1000);
    if (!v.spinning && !v.pulsing) animated.delete(v);
  }
  siteRoot.updateMatrixWorld();
  if (labelsDirty && !presenting) {
    labelsDirty = false;
    const entries = [...labels].map(([id, label]) => { const v = visuals.get(id); return { label, selected: v.selected, hovered: v.hovered }; });
    hook.labelsShown = layoutLabels(entries, camera, viewSize.w, viewSize.h);
  }
  alarms.update(presenting ? renderer.xr.getCamera() : camera, siteRoot, presenting);
  renderer.render(scene, camera);
  drewLast = !presenting;
  xr.afterRender();
  hook.frames += 1;
  hook.renderedSeq = hook.seq;
  lastDraw = time;
  dirty = false;
}

// --- test and debugging hook ------------------------------------------------------------------

installHook(hook, {
  get visuals() { return visuals; }, get siteRoot() { return siteRoot; }, get camera() { return camera; },
  get renderer() { return renderer; }, get controls() { return controls; }, get mover() { return mover; },
  get drawMs() { return drawMs; }, get info() { return info; }, get connection() { return connection; },
  get xr() { return xr; }, get trend() { return trend; }, commandLog, panel3d, labels, alarms,
  pickAt, select, focusDevice, siteBounds, sendCommand,
});

// --- start ------------------------------------------------------------------------------------

async function main() {
  banner = new Banner($('banner'), (t) => announce(t, true));
  summary = new StatusSummary($('summary'), (kind) => {
    deviceList.setKind(kind);
    summary.setActive(kind);
    if (kind) { showDevices(true); const first = document.querySelector('#device-tree button.dev'); if (first) first.focus(); }
  });
  trend = new Trend($('panel-trend'), requestHistory);
  sidePanel = new SidePanel({
    onCommand: (device, command, args, confirmed) => sendCommand(device, command, args, confirmed),
    onClose: () => select(null),
    log: commandLog,
    trend,
    context: () => ({ connected: hook.live, role: hook.role, user: hook.user, actuation: hook.actuation, past: hook.mode === 'past' }),
  });
  setupLogin();
  alarms.mountDom($('bar'));
  $('bar').insertBefore($('alarms-open'), $('status')); // the alarm list beside the counts
  setupKeys({
    $, select, selected: () => hook.selectedDevice, focusDevice: () => focusDevice(), fit: () => mover.fit(siteBounds(), info.camera, true),
    showDevices, narrow, deviceList: () => deviceList,
  });
  try {
    await loadSite();
  } catch (err) {
    hook.error = String(err);
    setStatus(false, `cannot load the site: ${err.message || err}`);
    throw err;
  }
  deviceList = new DeviceList(info.devices.filter((d) => visuals.has(d.id)), {
    tree: $('device-tree'), search: $('search'), filter: $('filter'), filterText: $('filter-text'), filterClear: $('filter-clear'),
    onSelect: (id) => { select(id, { fly: true }); if (narrow()) showDevices(false); },
  });
  deviceList.onKind = (kind) => summary.setActive(kind);
  for (const [id, v] of visuals) applyEntry(id, v.entry);
  buildLegend($('legend'), info.devices);
  setupChrome();
  connection = new Connection(bridgeUrl(), { message: onMessage, status: setStatus });
  timeline = new Timeline((msg) => connection.send(msg));
  hook.seek = (t) => connection.send({ type: 'seek', t });
  hook.goLive = () => timeline.live(); // (hook.live is whether the page has live values)
  connection.open();
  hook.connection = connection;
  const fromAddress = () => {
    const id = decodeURIComponent(window.location.hash.slice(1));
    if (id && visuals.has(id) && id !== hook.selectedDevice) select(id, { fly: true });
  };
  window.addEventListener('hashchange', fromAddress);
  fromAddress();
  hook.ready = true;
  await xr.setupButtons((text) => toast(text));
}

main();
