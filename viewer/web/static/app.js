// twinview in the browser and in headsets: the live site over the bridge's websocket.
//
// Desktop: orbit, hover and click to inspect (HTML side panel), live colours,
// motion and labels. Immersive (WebXR VR or AR): the same scene; a controller
// ray selects a device on 'select' and opens an in-scene panel with live values
// and command buttons. window.twinview exposes state for tests and debugging.
import * as THREE from 'three';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';
import { Alarms } from './alarms.js';
import { Connection, bridgeUrl } from './connection.js';
import { commandStateText } from './format.js';
import { LabelSprite } from './labels.js';
import { DeviceVisual, FLAGS } from './looks.js';
import { Panel3D } from './panel3d.js';
import { SidePanel } from './sidepanel.js';
import { Timeline } from './timeline.js';

const MAX_LABELS = 400; // beyond this only selected or alarmed devices carry a label
const BACKGROUND = new THREE.Color('#c9d3de');
const $ = (id) => document.getElementById(id);

const hook = {
  ready: false, connected: false, error: null, seq: -1, snapshots: 0, deltas: 0, frames: 0, renderedSeq: -1,
  user: null, role: null, mode: 'live', pastAt: null, selectedDevice: null, hoveredDevice: null, errors: [], results: [], commandStates: [],
  xr: { supported: { vr: false, ar: false }, presenting: false, mode: null, selects: 0 },
};
window.twinview = hook;

let info = null;
let timeline = null; // the history slider (created once the connection exists)
let renderer, scene, camera, controls, siteRoot;
const visuals = new Map(); // device id -> DeviceVisual
const pickables = [];
const labels = new Map(); // device id -> LabelSprite
const animated = new Set(); // visuals that spin or pulse
let dirty = true;
let placePanel = false; // place the headset panel once the XR camera has a pose
let connection = null;
let sidePanel = null;
const panel3d = new Panel3D();
// The alarm list (page, headset panel, area badges): alarms.js; these few lines hook it in.
const alarms = new Alarms({ send: (m) => (connection ? connection.send(m) : false), select: (id) => select(id), role: () => hook.role });
hook.alarms = alarms;
const raycaster = new THREE.Raycaster();
let lastTime = null;
const controllers = [];

function toast(text) {
  const t = $('toast');
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 4000);
}

function setStatus(connected, detail) {
  hook.connected = connected;
  const s = $('status');
  s.className = `status ${connected ? 'online' : 'offline'}`;
  s.textContent = connected ? 'live' : `offline${detail ? ': ' + detail : ''}`;
  if (!connected) { hook.user = null; hook.role = null; $('user').textContent = ''; }
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
  renderer.setSize(window.innerWidth, window.innerHeight);
  renderer.xr.enabled = true;
  renderer.xr.setReferenceSpaceType('local-floor');
  $('viewport').append(renderer.domElement);

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

  camera = new THREE.PerspectiveCamera(45, window.innerWidth / window.innerHeight, 0.05, 5000);
  controls = new OrbitControls(camera, renderer.domElement);
  controls.addEventListener('change', () => { dirty = true; });
  fitCamera();

  window.addEventListener('resize', onResize);
  setupPointer();
  setupControllers();
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
  hook.ready = true;
}

function siteBounds() {
  const [lo, hi] = info.bounds;
  const center = new THREE.Vector3((lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, (lo[2] + hi[2]) / 2);
  const radius = Math.max(0.5, new THREE.Vector3(hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]).length() / 2);
  return { lo, hi, center, radius };
}

function fitCamera() {
  const { center, radius } = siteBounds();
  camera.near = radius / 200;
  camera.far = radius * 40;
  if (info.camera) {
    camera.position.fromArray(info.camera.position);
    controls.target.fromArray(info.camera.target);
  } else {
    const dir = new THREE.Vector3(0.9, 0.75, 1.1).normalize();
    const distance = radius / Math.tan(THREE.MathUtils.degToRad(camera.fov / 2)) * 0.9;
    camera.position.copy(center).addScaledVector(dir, distance);
    controls.target.copy(center);
  }
  camera.updateProjectionMatrix();
  controls.update();
  dirty = true;
}

function onResize() {
  if (renderer.xr.isPresenting) return; // the headset decides the size
  camera.aspect = window.innerWidth / window.innerHeight;
  camera.updateProjectionMatrix();
  renderer.setSize(window.innerWidth, window.innerHeight);
  dirty = true;
}

// --- live state ------------------------------------------------------------------------

function labelTone(entry) {
  const f = entry ? entry.flags : FLAGS.STALE;
  if (f & FLAGS.ALARM) return 'alarm';
  if (f & FLAGS.OFFLINE) return 'offline';
  if (f & FLAGS.BAD) return 'bad';
  if (f & FLAGS.STALE) return 'stale';
  return 'good';
}

function updateLabel(visual) {
  const entry = visual.entry;
  const show = hook.labelsAll || visual.selected || (entry && entry.flags & FLAGS.ALARM);
  const text = show && entry ? entry.label : '';
  let label = labels.get(visual.id);
  if (!text && !label) return;
  if (!label) {
    const size = visual.box.getSize(new THREE.Vector3());
    label = new LabelSprite(Math.min(Math.max(Math.max(size.x, size.z) * 0.3, 0.2), 3.0));
    const top = visual.box.getCenter(new THREE.Vector3());
    top.y = visual.box.max.y + label.height * 0.25;
    label.sprite.position.copy(top);
    label.sprite.name = `label ${visual.id}`;
    siteRoot.add(label.sprite);
    labels.set(visual.id, label);
  }
  label.set(text, labelTone(entry));
}

function applyEntry(id, entry) {
  const visual = visuals.get(id);
  if (!visual) return;
  visual.apply(entry);
  if (visual.spinning || visual.pulsing) animated.add(visual); else animated.delete(visual);
  updateLabel(visual);
  if (sidePanel && sidePanel.visual === visual) sidePanel.refresh();
  if (panel3d.device === visual) panel3d.draw();
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

function onMessage(msg) {
  if (alarms.handle(msg)) { dirty = true; return; }
  switch (msg.type) {
    case 'hello':
      hook.hello = msg;
      break;
    case 'snapshot': {
      hook.snapshots += 1;
      hook.mode = 'live';
      if (timeline) timeline.showLive();
      const seen = new Set(Object.keys(msg.devices));
      for (const [id, visual] of visuals) if (!seen.has(id) && visual.entry) applyEntry(id, null);
      for (const [id, entry] of Object.entries(msg.devices)) applyEntry(id, entry);
      if (msg.commands) for (const s of msg.commands) onCommandState(s, false);
      hook.seq = msg.seq;
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
      alarms.refresh();
      toast(`logged in as ${msg.user} (${msg.role})`);
      break;
    case 'status':
      hook.status = msg;
      showErrors(msg);
      if (timeline) timeline.status(msg.history);
      break;
    case 'past': {
      hook.mode = 'past';
      hook.pastAt = msg.at;
      for (const [id, entry] of Object.entries(msg.devices)) applyEntry(id, entry);
      if (timeline) timeline.showPast(msg);
      dirty = true;
      break;
    }
    case 'command_queued':
      break;
    case 'command_result':
      hook.results.push(msg);
      showCommandState(msg);
      break;
    case 'command_state':
      onCommandState(msg, true);
      break;
    case 'error':
      hook.errors.push(msg);
      if (msg.code === 'auth_failed' || msg.code === 'no_actuation') toast(msg.message);
      if (msg.ref) showCommandState({ ...msg, state: 'refused', reason: msg.message });
      break;
    default:
      break;
  }
}

function onCommandState(s, live) {
  hook.commandStates.push(s);
  if (hook.commandStates.length > 200) hook.commandStates.shift();
  if (live) showCommandState(s);
}

function showCommandState(s) {
  const selected = hook.selectedDevice;
  if (s.device && selected && s.device !== selected) return;
  if (sidePanel && sidePanel.visual) sidePanel.addLog(s);
  if (panel3d.device) panel3d.setStatus(s);
  if (!s.device || !selected) toast(commandStateText(s));
  dirty = true;
}

function sendCommand(device, command, args, confirmed) {
  if (hook.mode === 'past') {  // the past cannot be commanded (the headset panel and the page alike)
    const text = `${command}: not sent: showing the past; press Live first`;
    if (panel3d.device) panel3d.setStatus(text);
    toast(text);
    return null;
  }
  const ref = connection.command(device, command, args, confirmed);
  const text = ref ? `${command}: requested` : `${command}: not sent (offline)`;
  if (sidePanel && sidePanel.visual) sidePanel.addLog({ command, device, state: ref ? 'requested' : 'not sent' });
  if (panel3d.device) panel3d.setStatus(text);
  return ref;
}

// --- selection and picking -----------------------------------------------------------------

function select(id) {
  const previous = visuals.get(hook.selectedDevice);
  if (previous) { previous.selected = false; previous.refreshEmissive(0); updateLabel(previous); }
  const visual = id ? visuals.get(id) : null;
  hook.selectedDevice = visual ? visual.id : null;
  if (visual) { visual.selected = true; visual.refreshEmissive(0); updateLabel(visual); }
  if (renderer.xr.isPresenting) {
    if (visual) { panel3d.open(visual, hook.role); panel3d.placeBefore(renderer.xr.getCamera()); } else panel3d.close();
  } else {
    sidePanel.show(visual);
  }
  dirty = true;
}

function hover(id) {
  if (id === hook.hoveredDevice) return;
  const previous = visuals.get(hook.hoveredDevice);
  if (previous) { previous.hovered = false; previous.refreshEmissive(0); }
  const visual = id ? visuals.get(id) : null;
  hook.hoveredDevice = visual ? visual.id : null;
  if (visual) { visual.hovered = true; visual.refreshEmissive(0); }
  renderer.domElement.style.cursor = visual ? 'pointer' : '';
  dirty = true;
}

function pickFromRay() {
  const hits = raycaster.intersectObjects(pickables, false);
  for (const hit of hits) {
    const v = hit.object.userData.visual;
    if (v && hit.object.visible) return v.id;
  }
  return null;
}

function setupPointer() {
  const el = renderer.domElement;
  const ndc = new THREE.Vector2();
  let down = null;
  const pick = (event) => {
    const rect = el.getBoundingClientRect();
    ndc.set(((event.clientX - rect.left) / rect.width) * 2 - 1, -((event.clientY - rect.top) / rect.height) * 2 + 1);
    raycaster.setFromCamera(ndc, camera);
    return pickFromRay();
  };
  el.addEventListener('pointermove', (e) => { if (!renderer.xr.isPresenting && !down) hover(pick(e)); });
  el.addEventListener('pointerdown', (e) => { down = { x: e.clientX, y: e.clientY }; });
  el.addEventListener('pointerup', (e) => {
    if (down && Math.hypot(e.clientX - down.x, e.clientY - down.y) < 5 && !renderer.xr.isPresenting) select(pick(e));
    down = null;
  });
}

// --- immersive sessions ----------------------------------------------------------------------

function setupControllers() {
  const geometry = new THREE.BufferGeometry().setFromPoints([new THREE.Vector3(0, 0, 0), new THREE.Vector3(0, 0, -1)]);
  for (let i = 0; i < 2; i++) {
    const controller = renderer.xr.getController(i);
    const line = new THREE.Line(geometry, new THREE.LineBasicMaterial({ color: 0xffb000 }));
    line.name = 'ray';
    line.scale.z = 8;
    controller.add(line);
    controller.addEventListener('connected', (e) => { controller.userData.handedness = e.data.handedness; });
    controller.addEventListener('select', onXRSelect);
    scene.add(controller);
    controllers.push(controller);
  }
}

function onXRSelect(event) {
  hook.xr.selects += 1;
  const controller = event.target;
  controller.updateMatrixWorld(true);
  raycaster.setFromXRController(controller);
  const alarmHit = alarms.panel.mesh.visible ? raycaster.intersectObject(alarms.panel.mesh, false)[0] : null;
  const panelHit = panel3d.mesh.visible ? raycaster.intersectObject(panel3d.mesh, false)[0] : null;
  if (alarmHit && !(panelHit && panelHit.distance < alarmHit.distance)) {
    hook.xr.lastButton = 'alarms';
    alarms.panel.press(alarmHit.uv);
    dirty = true;
    return;
  }
  if (panel3d.mesh.visible) {
    const hit = raycaster.intersectObject(panel3d.mesh, false)[0];
    if (hit) { onPanelButton(panel3d.hit(hit.uv)); return; }
  }
  const id = pickFromRay();
  hook.xr.lastHandedness = controller.userData.handedness || null;
  if (id) select(id);
}

function onPanelButton(button) {
  if (!button) return;
  hook.xr.lastButton = button.label;
  const a = button.action;
  if (a.kind === 'close') { select(null); return; }
  if (a.kind === 'cancel') { panel3d.confirming = null; panel3d.draw(); return; }
  if (a.kind === 'confirm' && panel3d.confirming) {
    const v = panel3d.confirming;
    panel3d.confirming = null;
    sendCommand(panel3d.device.id, v.cmd.name, v.args, true);
    panel3d.draw();
    return;
  }
  if (a.kind === 'command') {
    const v = a.variant;
    if (v.cmd.confirm) { panel3d.confirming = v; panel3d.draw(); return; }
    sendCommand(panel3d.device.id, v.cmd.name, v.args, false);
  }
}

function placeForXR(mode) {
  const { lo, center, radius } = siteBounds();
  if (mode === 'immersive-ar') {
    const s = 0.45 / radius; // a table-top model about a metre across
    siteRoot.scale.setScalar(s);
    siteRoot.position.set(-center.x * s, 0.85 - lo[1] * s, -center.z * s - 1.0);
    scene.background = null;
  } else {
    const s = radius > 40 ? 40 / radius : 1;
    siteRoot.scale.setScalar(s);
    siteRoot.position.set(-center.x * s, -lo[1] * s, -center.z * s - (radius * s + 1.0));
  }
  siteRoot.updateMatrixWorld(true);
}

async function enterXR(mode) {
  if (!navigator.xr) throw new Error('WebXR is not available in this browser');
  const session = await navigator.xr.requestSession(mode, { optionalFeatures: ['local-floor', 'bounded-floor', 'hand-tracking'] });
  session.addEventListener('end', onXREnd);
  await renderer.xr.setSession(session);
  hook.xr.presenting = true;
  hook.xr.mode = mode;
  sidePanel.show(null);
  placeForXR(mode);
  alarms.placePending = true;
  const selected = visuals.get(hook.selectedDevice);
  if (selected) { panel3d.open(selected, hook.role); placePanel = true; }
  return true;
}

function onXREnd() {
  hook.xr.presenting = false;
  hook.xr.mode = null;
  siteRoot.position.set(0, 0, 0);
  siteRoot.scale.setScalar(1);
  scene.background = BACKGROUND;
  panel3d.close();
  alarms.panel.hide();
  const selected = visuals.get(hook.selectedDevice);
  if (selected) sidePanel.show(selected);
  setTimeout(onResize, 0); // the session is still presenting during its 'end' event
}

async function setupXRButtons() {
  if (!navigator.xr) return;
  for (const [mode, id, key] of [['immersive-vr', 'enter-vr', 'vr'], ['immersive-ar', 'enter-ar', 'ar']]) {
    let ok = false;
    try { ok = await navigator.xr.isSessionSupported(mode); } catch (err) { ok = false; }
    hook.xr.supported[key] = ok;
    const button = $(id);
    button.hidden = !ok;
    button.addEventListener('click', () => {
      if (renderer.xr.isPresenting) { renderer.xr.getSession().end(); return; }
      enterXR(mode).catch((err) => { hook.error = String(err); toast(`could not start ${key.toUpperCase()}: ${err.message || err}`); });
    });
  }
}

// --- frame loop ---------------------------------------------------------------------------

function frame(time) {
  const dt = lastTime === null ? 0 : Math.min((time - lastTime) / 1000, 0.1);
  lastTime = time;
  const xr = renderer.xr.isPresenting;
  if (!xr && !dirty && animated.size === 0) return;
  for (const v of animated) {
    v.advance(dt);
    if (v.pulsing) v.refreshEmissive(time / 1000);
    if (!v.spinning && !v.pulsing) animated.delete(v);
  }
  alarms.update(xr ? renderer.xr.getCamera() : camera, siteRoot, xr);
  renderer.render(scene, camera);
  if (xr && placePanel) { placePanel = false; panel3d.placeBefore(renderer.xr.getCamera()); }
  if (xr && alarms.placePending) { alarms.placePending = false; alarms.panel.show(renderer.xr.getCamera()); }
  hook.frames += 1;
  hook.renderedSeq = hook.seq;
  dirty = false;
}

// --- test and debugging hook ------------------------------------------------------------------

Object.assign(hook, {
  deviceColor(id) {
    const v = visuals.get(id);
    return v ? { color: v.colorHex(), painted: v.painted, flags: v.entry ? v.entry.flags : null } : null;
  },
  deviceEntry(id) {
    const v = visuals.get(id);
    return v ? v.entry : null;
  },
  /** CSS pixel position of the centre of a device's top face (desktop view). */
  screenPosition(id, offset = [0, 0, 0]) {
    const v = visuals.get(id);
    if (!v) return null;
    const p = v.box.getCenter(new THREE.Vector3());
    p.y = v.box.max.y;
    p.add(new THREE.Vector3().fromArray(offset));
    p.applyMatrix4(siteRoot.matrixWorld).project(camera);
    const rect = renderer.domElement.getBoundingClientRect();
    return { x: rect.left + ((p.x + 1) / 2) * rect.width, y: rect.top + ((1 - p.y) / 2) * rect.height };
  },
  /** World position of a device's centre (where the site is placed now, also in XR). */
  worldPosition(id) {
    const v = visuals.get(id);
    if (!v) return null;
    const p = v.box.getCenter(new THREE.Vector3()).applyMatrix4(siteRoot.matrixWorld);
    return { x: p.x, y: p.y, z: p.z };
  },
  select: (id) => select(id),
  login: (token) => connection.login(token),
  sendCommand: (device, command, args, confirmed) => sendCommand(device, command, args, confirmed),
  enterXR: (mode = 'immersive-vr') => enterXR(mode),
  exitXR: async () => { const s = renderer.xr.getSession(); if (s) await s.end(); },
  panel() {
    return {
      visible: panel3d.mesh.visible, device: panel3d.device ? panel3d.device.id : null,
      confirming: panel3d.confirming ? panel3d.confirming.label : null, status: panel3d.status,
      buttons: panel3d.buttons.map((b) => b.label),
    };
  },
  alarmButtonPosition(label) {
    const p = alarms.panel.buttonWorldPosition(label);
    return p ? { x: p.x, y: p.y, z: p.z } : null;
  },
  panelButtonPosition(label) {
    const p = panel3d.buttonWorldPosition(label);
    return p ? { x: p.x, y: p.y, z: p.z } : null;
  },
  labelText: (id) => (labels.get(id) ? labels.get(id).text : null),
  partAngle(id, motion = 0) {
    const v = visuals.get(id);
    const part = v && v.parts.get(motion);
    return part ? part.angle : null;
  },
});

// --- start ------------------------------------------------------------------------------------

function setupLogin() {
  const form = $('login');
  $('login-open').addEventListener('click', () => { form.hidden = !form.hidden; if (!form.hidden) $('token').focus(); });
  $('login-close').addEventListener('click', () => { form.hidden = true; });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const token = $('token').value.trim();
    $('token').value = '';
    form.hidden = true;
    if (token) connection.login(token); // the server keeps the session in an HttpOnly cookie
  });
  $('logout').addEventListener('click', () => {
    form.hidden = true;
    connection.login(null);
  });
}

async function main() {
  sidePanel = new SidePanel((device, command, args, confirmed) => sendCommand(device, command, args, confirmed), () => select(null));
  setupLogin();
  alarms.mountDom($('bar'));
  try {
    await loadSite();
  } catch (err) {
    hook.error = String(err);
    setStatus(false, `cannot load the site: ${err.message || err}`);
    throw err;
  }
  connection = new Connection(bridgeUrl(), { message: onMessage, status: setStatus });
  timeline = new Timeline((msg) => connection.send(msg));
  hook.seek = (t) => connection.send({ type: 'seek', t });
  hook.live = () => connection.send({ type: 'live' });
  connection.open();
  hook.connection = connection;
  await setupXRButtons();
}

main();
