// A small line protocol around headless Chromium (playwright-core) for the Python tests.
//
// stdin: one JSON request per line {id, op, ...}; stdout: one JSON reply per line
// {id, ok, result} or {id, ok: false, error}. Ops:
//   launch {iwer, width, height}  start Chromium (IWER emulating a Quest 3 when iwer)
//   goto {url}                   open a page and wait for window.twinview.ready
//   eval {fn, arg}               page.evaluate of a function source, e.g. "(id) => twinview.deviceColor(id)"
//   wait {fn, arg, timeout}      page.waitForFunction; returns the truthy value
//   screenshot {path}            PNG of the viewport
//   click {selector} | mouse {x, y} | key {key} | type {text} | wheel {x, y, dy} | tap {x, y} (touch) | fill {selector, text}
//   xr {method, params}          xrDevice.remote.dispatch(method, params) inside the page
//   close
// Chromium runs with the flags that work on machines without a GPU (SwiftShader WebGL).
import { createRequire } from 'node:module';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const webDir = path.join(here, '..', '..', 'viewer', 'web');
const require = createRequire(path.join(webDir, 'package.json'));
const { chromium } = require('playwright-core');
const IWER_PATH = path.join(webDir, 'node_modules', 'iwer', 'build', 'iwer.min.js');

const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic',
  '--use-angle=swiftshader', '--enable-unsafe-swiftshader',
];

let browser = null;
let page = null;
const consoleLines = [];

async function launch({ iwer = false, width = 800, height = 600, touch = false }) {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: FLAGS,
    headless: true,
  });
  const context = await browser.newContext({ viewport: { width, height }, deviceScaleFactor: 1, hasTouch: touch, isMobile: touch });
  page = await context.newPage();
  page.on('console', (msg) => consoleLines.push(`${msg.type()}: ${msg.text()}`));
  page.on('pageerror', (err) => consoleLines.push(`pageerror: ${err.message}`));
  if (iwer) {
    await page.addInitScript({ path: IWER_PATH });
    await page.addInitScript(() => {
      const device = new IWER.XRDevice(IWER.metaQuest3);
      device.installRuntime({ forceInstall: true });
      window.__xrDevice = device;
    });
  }
  return { version: browser.version() };
}

const ops = {
  launch,
  async goto({ url, timeout = 20000 }) {
    await page.goto(url);
    return ops.wait({ fn: '() => window.twinview && (window.twinview.ready || window.twinview.error) && '
      + '({ ready: window.twinview.ready, error: window.twinview.error })', timeout });
  },
  async eval({ fn, arg }) {
    return page.evaluate(`(${fn})(${JSON.stringify(arg === undefined ? null : arg)})`);
  },
  async wait({ fn, arg, timeout = 10000 }) {
    // Polls with page.evaluate (CDP evaluation is not subject to the page's CSP;
    // waitForFunction builds functions inside the page, which the CSP forbids).
    const expr = `(${fn})(${JSON.stringify(arg === undefined ? null : arg)})`;
    const end = Date.now() + timeout;
    let last;
    for (;;) {
      last = await page.evaluate(expr);
      if (last) return last;
      if (Date.now() > end) throw new Error(`timed out after ${timeout} ms (last value ${JSON.stringify(last)})`);
      await new Promise((r) => setTimeout(r, 50));
    }
  },
  async screenshot({ path: file }) {
    await page.screenshot({ path: file });
    return file;
  },
  async click({ selector }) {
    await page.click(selector);
    return true;
  },
  async mouse({ x, y, click = false }) {
    await page.mouse.move(x, y);
    if (click) { await page.mouse.down(); await page.mouse.up(); }
    return true;
  },
  async key({ key }) {
    await page.keyboard.press(key);
    return true;
  },
  async type({ text }) {
    await page.keyboard.type(text);
    return true;
  },
  async wheel({ x, y, dy }) {
    await page.mouse.move(x, y);
    await page.mouse.wheel(0, dy);
    return true;
  },
  async tap({ x, y }) {
    await page.touchscreen.tap(x, y);
    return true;
  },
  async fill({ selector, text }) {
    await page.fill(selector, text);
    return true;
  },
  async xr({ method, params }) {
    return page.evaluate(([m, p]) => window.__xrDevice.remote.dispatch(m, p), [method, params || {}]);
  },
  async console() {
    return consoleLines.slice(-200);
  },
  async close() {
    if (browser) await browser.close();
    browser = null;
    return true;
  },
};

const rl = readline.createInterface({ input: process.stdin });
let chain = Promise.resolve();
rl.on('line', (line) => {
  chain = chain.then(async () => {
    let req;
    try { req = JSON.parse(line); } catch (err) { return; }
    const reply = { id: req.id };
    try {
      reply.result = await ops[req.op](req);
      reply.ok = true;
    } catch (err) {
      reply.ok = false;
      reply.error = String(err && err.message ? err.message : err).slice(0, 2000);
    }
    process.stdout.write(JSON.stringify(reply) + '\n');
    if (req.op === 'close') process.exit(0);
  });
});
rl.on('close', async () => {
  await chain;
  if (browser) await browser.close();
  process.exit(0);
});
