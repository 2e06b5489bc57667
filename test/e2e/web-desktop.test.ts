import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Page, WebSocket } from 'playwright-core';
import { viewerMounts } from '@tsockify/viewer';
import { canvasSize, launchBrowser, newContext, pageDiagnostics, waitForCanvasColor } from '../helpers/browser.js';
import { freePort, waitForPort } from '../helpers/net.js';
import { startProcess, startTsockify, type Proc } from '../helpers/proc.js';
import { startXvnc, type XvncServer } from '../helpers/xvnc.js';

/**
 * A real web desktop end to end: TigerVNC Xvnc (root colour #1e90ff, an xterm that writes typed
 * lines to a file), the proxy in front of it, and noVNC in headless Chromium. Each case checks
 * that the canvas shows the desktop's pixels and that keys typed in the page reach the X server.
 */

/**
 * The proxy under test. `TSOCKIFY_E2E_PROXY=websockify` runs the same cases against Debian's
 * Python websockify 0.10 (useful to tell a harness problem from a tsockify one).
 */
const PROXY: 'tsockify' | 'websockify' = process.env.TSOCKIFY_E2E_PROXY === 'websockify' ? 'websockify' : 'tsockify';

const DEBIAN_NOVNC = '/usr/share/novnc';

interface ProxySpec {
  /** VNC server port on 127.0.0.1. */
  rfbPort: number;
  /** `--web DIR` */
  web?: string;
  /** `--viewer` (the built-in viewer) */
  viewer?: boolean;
  tls?: { cert: string; key: string };
}

interface RunningProxy { port: number; proc: Proc; origin: string }

/** Start the proxy under test on a free 127.0.0.1 port and wait until it accepts connections. */
async function startProxy(spec: ProxySpec, cleanups: Array<() => Promise<unknown>>): Promise<RunningProxy> {
  const port = await freePort();
  const args: string[] = [];
  if (spec.tls) args.push('--cert', spec.tls.cert, '--key', spec.tls.key);
  let proc: Proc;
  if (PROXY === 'tsockify') {
    if (spec.web) args.push('--web', spec.web);
    if (spec.viewer) args.push('--viewer');
    proc = startTsockify([...args, `127.0.0.1:${port}`, `127.0.0.1:${spec.rfbPort}`]);
  } else {
    // websockify has no built-in viewer: serve the viewer's mounts from one folder of symlinks.
    let web = spec.web;
    if (spec.viewer) {
      web = await viewerAsOneFolder();
      cleanups.push(() => rm(web!, { recursive: true, force: true }));
    }
    if (web) args.push('--web', web);
    proc = startProcess('websockify', [...args, `127.0.0.1:${port}`, `127.0.0.1:${spec.rfbPort}`]);
  }
  cleanups.push(() => proc.stop());
  await Promise.race([
    waitForPort(port, '127.0.0.1', 10_000),
    proc.exited.then((code) => { throw new Error(`${PROXY} exited (${code}) before listening:\n${proc.stdout()}${proc.stderr()}`); }),
  ]);
  return { port, proc, origin: `${spec.tls ? 'https' : 'http'}://127.0.0.1:${port}` };
}

/** The built-in viewer's mounts laid out as a single web root (for websockify's `--web`). */
async function viewerAsOneFolder(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tsockify-viewer-web-'));
  for (const { prefix, dir: from } of viewerMounts()) {
    if (prefix === '/') {
      for (const name of await readdir(from)) await symlink(path.join(from, name), path.join(dir, name));
    } else {
      const to = path.join(dir, prefix);
      await mkdir(path.dirname(to), { recursive: true });
      await symlink(from, to);
    }
  }
  return dir;
}

function execFileAsync(cmd: string, args: string[], timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} failed: ${err.message}\n${stdout}${stderr}`)); else resolve();
    });
  });
}

/** Points of the 800x600 desktop well away from the xterm (bottom right) and the pointer. */
function rootSamplePoints(x: XvncServer): Array<[number, number]> {
  const pts: Array<[number, number]> = [[10, 10], [400, 40], [x.width - 20, 20], [60, 300], [300, x.height - 20], [200, 200]];
  const t = x.xterm;
  return pts.filter(([px, py]) => !(px >= t.x - 5 && px <= t.x + t.width + 5 && py >= t.y - 5 && py <= t.y + t.height + 5));
}

/**
 * Click the desktop away from the xterm (so the page's keyboard focus is noVNC's canvas), type
 * a word and Enter, and wait until the xterm on the X side has the line. The key presses must
 * also have come in through the VNC keyboard device.
 */
async function typeIntoDesktop(page: Page, canvasSelector: string, desktop: XvncServer, word: string): Promise<void> {
  const seen = (await desktop.vncKeyPresses()).length;
  await page.locator(canvasSelector).first().click({ position: { x: 5, y: 5 } });
  await page.keyboard.type(word, { delay: 20 });
  await page.keyboard.press('Enter');
  await desktop.waitForTypedLine(word, 5000);
  const vncKeys = (await desktop.vncKeyPresses()).slice(seen);
  expect(vncKeys, 'key presses from the VNC keyboard').to.deep.equal([...word, 'Return']);
}

describe(`web desktop end to end (Xvnc + ${PROXY} + noVNC in Chromium)`, function () {
  this.timeout(60_000);
  this.slow(10_000);

  let desktop: XvncServer;
  let browser: Browser;
  let cleanups: Array<() => Promise<unknown>> = [];
  let proxies: Proc[] = [];
  let context: BrowserContext | undefined;
  let diagnostics: () => string = () => '';

  before(async function () {
    this.timeout(40_000);
    const [d, b] = await Promise.allSettled([startXvnc({ rootColor: '#1e90ff' }), launchBrowser()]);
    if (d.status === 'fulfilled') desktop = d.value;
    if (b.status === 'fulfilled') browser = b.value;
    if (d.status === 'rejected') throw d.reason;
    if (b.status === 'rejected') throw b.reason;
  });

  after(async () => {
    await browser?.close();
    await desktop?.stop();
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      const page = diagnostics();
      if (page) console.error(`page diagnostics:\n${page}`);
      for (const p of proxies) console.error(`${PROXY} output:\n${(p.stdout() + p.stderr()).slice(-4000)}`);
    }
    proxies = [];
    await context?.close();
    context = undefined;
    // Newest first: the proxy stops before the folders it serves are removed.
    for (const c of cleanups.reverse()) await c();
    cleanups = [];
  });

  /** The proxy under test, stopped after the case; its output is printed if the case fails. */
  async function proxyFor(spec: ProxySpec): Promise<RunningProxy> {
    const proxy = await startProxy(spec, cleanups);
    proxies.push(proxy.proc);
    return proxy;
  }

  /** A page in a fresh context; `webSocket` is the first WebSocket it opens (listened for before loading). */
  async function openPage(url: string, viewport?: { width: number; height: number }): Promise<{ page: Page; webSocket: Promise<WebSocket> }> {
    context = await newContext(browser, viewport);
    const page = await context.newPage();
    diagnostics = pageDiagnostics(page);
    const webSocket = page.waitForEvent('websocket');
    // Only some cases await it; the others must not see an unhandled rejection when the page closes.
    webSocket.catch(() => undefined);
    await page.goto(url);
    return { page, webSocket };
  }

  it('serves Debian noVNC 1.3 with --web and its vnc.html shows the desktop and sends keys', async () => {
    const proxy = await proxyFor({ rfbPort: desktop.rfbPort, web: DEBIAN_NOVNC });
    const { page } = await openPage(`${proxy.origin}/vnc.html?autoconnect=1&path=websockify&resize=scale`);
    await page.locator('html.noVNC_connected').waitFor();
    expect(await canvasSize(page, '#noVNC_container canvas')).to.deep.equal({ width: desktop.width, height: desktop.height });
    await waitForCanvasColor(page, rootSamplePoints(desktop), desktop.rootColor, 10_000, '#noVNC_container canvas');
    await typeIntoDesktop(page, '#noVNC_container canvas', desktop, 'novncone');
  });

  describe('the built-in viewer (noVNC 1.7)', () => {
    it('connects back to the same server, shows the desktop scaled to the window and sends keys', async () => {
      const proxy = await proxyFor({ rfbPort: desktop.rfbPort, viewer: true });
      const { page } = await openPage(`${proxy.origin}/`, { width: 640, height: 400 });
      const status = page.locator('#status');
      await page.locator('#status[data-state="connected"]').waitFor();
      expect(await status.textContent()).to.match(/^Connected to tsockify-e2e$/);
      expect(await canvasSize(page, '#screen canvas')).to.deep.equal({ width: desktop.width, height: desktop.height });
      await waitForCanvasColor(page, rootSamplePoints(desktop), desktop.rootColor, 10_000, '#screen canvas');

      // scaleViewport: the 800x600 desktop is drawn smaller so that it fits the 640x400 window.
      const box = await page.locator('#screen canvas').boundingBox();
      expect(box, 'canvas box').to.not.equal(null);
      expect(box!.width).to.be.at.most(640);
      expect(box!.height).to.be.at.most(400);
      expect(box!.width / box!.height).to.be.closeTo(800 / 600, 0.02);

      await typeIntoDesktop(page, '#screen canvas', desktop, 'viewer');
    });

    it('passes the page token through to the WebSocket URL', async () => {
      const proxy = await proxyFor({ rfbPort: desktop.rfbPort, viewer: true });
      const { page, webSocket } = await openPage(`${proxy.origin}/?token=a%20b%26c`);
      expect((await webSocket).url()).to.equal(`ws://127.0.0.1:${proxy.port}/websockify?token=a+b%26c`);
      await page.locator('#status[data-state="connected"]').waitFor();
    });

    it('says why when the VNC server cannot be reached', async () => {
      const deadPort = await freePort();
      const proxy = await proxyFor({ rfbPort: deadPort, viewer: true });
      const { page } = await openPage(`${proxy.origin}/`);
      await page.locator('#status[data-state="failed"]').waitFor();
      // tsockify refuses the upgrade (502); websockify upgrades, then closes with 1011.
      expect(await page.locator('#status').textContent())
        .to.match(/could not reach the VNC server|Failed to connect to downstream server/);
      expect(await page.locator('#reconnect').isVisible()).to.equal(true);
    });
  });

  it('works over TLS (wss) with --cert/--key', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tsockify-e2e-tls-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const cert = path.join(dir, 'cert.pem');
    const key = path.join(dir, 'key.pem');
    await execFileAsync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ]);
    const proxy = await proxyFor({ rfbPort: desktop.rfbPort, viewer: true, tls: { cert, key } });
    const { page, webSocket } = await openPage(`${proxy.origin}/`);
    expect((await webSocket).url()).to.equal(`wss://127.0.0.1:${proxy.port}/websockify`);
    await page.locator('#status[data-state="connected"]').waitFor();
    expect(await page.locator('#status').textContent()).to.include('(encrypted)');
    await waitForCanvasColor(page, rootSamplePoints(desktop), desktop.rootColor, 10_000, '#screen canvas');
    await typeIntoDesktop(page, '#screen canvas', desktop, 'secure');
  });

  describe('a VNC server that asks for a password (VncAuth)', () => {
    let locked: XvncServer | undefined;

    before(async function () {
      this.timeout(20_000);
      locked = await startXvnc({ password: 'e2e-pass', rootColor: '#228b22' });
    });

    after(async () => {
      await locked?.stop();
    });

    it('prompts for it, reports a wrong one, and connects with the right one', async () => {
      const proxy = await proxyFor({ rfbPort: locked!.rfbPort, viewer: true });
      const { page } = await openPage(`${proxy.origin}/`);
      const password = page.getByLabel('Password');

      await page.locator('#status[data-state="credentials"]').waitFor();
      await password.fill('wrong');
      await password.press('Enter');
      await page.locator('#status[data-state="failed"]').waitFor();
      expect(await page.locator('#status').textContent()).to.match(/^Authentication failed: .+/);

      await page.getByRole('button', { name: 'Reconnect', exact: true }).click();
      await page.locator('#status[data-state="credentials"]').waitFor();
      await password.fill('e2e-pass');
      await page.getByRole('button', { name: 'Connect', exact: true }).click();
      await page.locator('#status[data-state="connected"]').waitFor();
      await waitForCanvasColor(page, rootSamplePoints(locked!), locked!.rootColor, 10_000, '#screen canvas');
      await typeIntoDesktop(page, '#screen canvas', locked!, 'password');
    });
  });
});
