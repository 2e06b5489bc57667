import { expect } from 'chai';
import { once } from 'node:events';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext } from 'playwright-core';
import { formatKeyLine, generateKey, signToken } from '../../packages/auth-plugins/src/index.js';
import { launchBrowser, newContext, pageDiagnostics, waitForCanvasColor } from '../helpers/browser.js';
import { freePort, waitForPort } from '../helpers/net.js';
import { startTsockify, type Proc } from '../helpers/proc.js';
import { startXvnc, type XvncServer } from '../helpers/xvnc.js';

/**
 * The portal flow of web-desktop.md end to end: a portal on another site redirects the browser
 * to a one-time signed link on tsockify (`--viewer --token-plugin SignedToken ... --cookie-exchange`);
 * tsockify trades the token for an HttpOnly cookie and redirects to the bare viewer, whose
 * WebSocket authenticates by the cookie and shows the live Xvnc desktop in headless Chromium.
 */
describe('cookie exchange end to end (portal → signed one-time link → cookie → live desktop)', function () {
  this.timeout(60_000);
  this.slow(10_000);

  let desktop: XvncServer;
  let browser: Browser;
  let context: BrowserContext | undefined;
  let dir: string;
  let proxy: Proc | undefined;
  let portal: http.Server | undefined;
  let diagnostics: () => string = () => '';

  before(async function () {
    this.timeout(40_000);
    dir = await mkdtemp(path.join(os.tmpdir(), 'tsockify-e2e-cookie-'));
    const [d, b] = await Promise.allSettled([startXvnc({ rootColor: '#8b008b' }), launchBrowser()]);
    if (d.status === 'fulfilled') desktop = d.value;
    if (b.status === 'fulfilled') browser = b.value;
    if (d.status === 'rejected') throw d.reason;
    if (b.status === 'rejected') throw b.reason;
  });

  after(async () => {
    await browser?.close();
    await desktop?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      console.error(`page diagnostics:\n${diagnostics()}`);
      if (proxy) console.error(`tsockify output:\n${(proxy.stdout() + proxy.stderr()).slice(-4000)}`);
    }
    await context?.close();
    context = undefined;
    await proxy?.stop();
    proxy = undefined;
    if (portal) {
      portal.closeAllConnections();
      await new Promise<void>((r) => portal!.close(() => r()));
      portal = undefined;
    }
  });

  it('leaves no token in the address bar, the cookie jar visible to scripts or a Referer, and shows the desktop', async () => {
    // The gateway's keys: the portal holds the same hs256 line.
    const key = generateKey('portal-2025', 'HS256');
    const keys = path.join(dir, 'keys');
    await writeFile(keys, `${formatKeyLine(key)}\n`);
    const port = await freePort();
    proxy = startTsockify([
      '--viewer', '--token-plugin', 'SignedToken', '--token-source', `${keys}:3600:once`, '--cookie-exchange',
      '--allow-target', `127.0.0.1/32:${desktop.rfbPort}`, '--allow-loopback-targets', '--log-format', 'json',
      `127.0.0.1:${port}`,
    ], { env: { ...process.env, NO_COLOR: '1' } });
    await Promise.race([
      waitForPort(port, '127.0.0.1', 10_000),
      proxy.exited.then((code) => { throw new Error(`tsockify exited (${code}):\n${proxy!.stderr()}`); }),
    ]);
    const gateway = `http://127.0.0.1:${port}`;
    const token = signToken({ host: '127.0.0.1', port: desktop.rfbPort, sub: 'alice', iid: 'i-e2e', ttlSec: 600 }, key);
    const link = `${gateway}/?token=${token}`;

    // The portal is another site (localhost vs 127.0.0.1): it sends the browser on with a redirect.
    portal = http.createServer((_req, res) => { res.writeHead(302, { Location: link }); res.end(); });
    portal.listen(0, 'localhost');
    await once(portal, 'listening');
    const portalUrl = `http://localhost:${(portal.address() as net.AddressInfo).port}/desktop/i-e2e`;

    context = await newContext(browser, { width: 1024, height: 768 });
    const page = await context.newPage();
    diagnostics = pageDiagnostics(page);
    const referers: string[] = [];
    const urls: string[] = [];
    page.on('request', (r) => {
      urls.push(r.url());
      const ref = r.headers()['referer'];
      if (ref) referers.push(ref);
    });
    const webSocket = page.waitForEvent('websocket');
    await page.goto(portalUrl);
    await page.locator('#status[data-state="connected"]').waitFor({ timeout: 15_000 });

    // The address bar and history: the 303 replaced the link with the bare viewer.
    expect(page.url()).to.equal(`${gateway}/`);
    expect(await page.evaluate(() => location.href)).to.not.include('token');
    // The WebSocket carried no token in its URL; the cookie did the work.
    expect((await webSocket).url()).to.equal(`ws://127.0.0.1:${port}/websockify`);
    // Scripts cannot read the cookie (HttpOnly), although the browser holds it.
    expect(await page.evaluate(() => document.cookie)).to.equal('');
    const jar = await context.cookies(gateway);
    expect(jar).to.have.length(1);
    expect(jar[0]).to.include({ name: 'tsockify_token', httpOnly: true, sameSite: 'Strict', path: '/', secure: false });
    expect(jar[0]!.expires * 1000 - Date.now()).to.be.within(590_000, 601_000);
    // No request after the exchange sent the token in a Referer (nor anywhere in its URL).
    expect(referers.filter((r) => r.includes(token))).to.deep.equal([]);
    expect(urls.filter((u) => u.includes(token))).to.deep.equal([link]);

    // The live desktop is on the canvas.
    await waitForCanvasColor(page, [[10, 10], [400, 40], [200, 200]], desktop.rootColor, 10_000, '#screen canvas');

    // The session's page can reload and reconnect by its cookie, though the link was one-time.
    await page.reload();
    await page.locator('#status[data-state="connected"]').waitFor({ timeout: 15_000 });
    expect(page.url()).to.equal(`${gateway}/`);

    // The link itself is spent: in another browser it gets 401 "token already used".
    const other = await newContext(browser);
    try {
      const p2 = await other.newPage();
      const res = await p2.goto(link);
      expect(res?.status()).to.equal(401);
      expect(await p2.textContent('body')).to.equal('token already used\n');
      expect(await other.cookies(gateway)).to.deep.equal([]);
    } finally {
      await other.close();
    }

    // The gateway logged the exchange and the sessions by token hash and id, never the token.
    await proxy.waitForOutput(/token exchanged for a cookie/);
    expect(proxy.stderr()).to.not.include(token);
    expect(proxy.stderr()).to.match(/"jti":"[A-Za-z0-9_-]{22}"/);
  });
});
