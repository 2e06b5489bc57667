/**
 * Cross-site WebSocket hijacking (CSWSH; CVE-2015-0259 in nova's noVNC proxy is the same
 * class): a page on another site opens a WebSocket to the gateway with the victim's cookies.
 * Browsers always send the page's Origin; `--auth-plugin ExpectOrigin` must refuse every
 * Origin that is not exactly a configured one, with 403, BEFORE the target is dialled.
 * Run against the real command.
 */
import { expect } from 'chai';
import WebSocket from 'ws';
import { startTcpTarget, type TcpTargetServer } from '../helpers/net.js';
import { rawSession } from '../fuzz/frame-builder.js';
import { startCli, type Cli } from '../soak/cli.js';

const PORTAL = 'https://portal.example.org';

function outcome(url: string, headers: Record<string, string>): Promise<string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, 'binary', { headers });
    ws.on('open', () => { ws.close(); resolve('open'); });
    ws.on('unexpected-response', (_req, res) => { res.resume(); resolve(`status ${res.statusCode}`); ws.terminate(); });
    ws.on('error', (err) => resolve(`error ${err.message}`));
  });
}

describe('security: cross-site WebSocket hijacking against ExpectOrigin', function () {
  this.timeout(30_000);
  let target: TcpTargetServer;
  let cli: Cli;

  before(async () => {
    target = await startTcpTarget();
    cli = await startCli(['--auth-plugin', 'ExpectOrigin', '--auth-source', `${PORTAL} http://127.0.0.1:8080`], [`127.0.0.1:${target.port}`]);
  });
  after(async () => {
    await cli?.stop();
    await target?.close();
  });

  const hostile: Array<[string, Record<string, string>]> = [
    ['another site', { Origin: 'https://evil.example' }],
    ['no Origin at all', {}],
    ['the opaque origin "null" (sandboxed iframe, file://, data: URL)', { Origin: 'null' }],
    ['a suffix-extended host (portal.example.org.evil.com)', { Origin: `${PORTAL}.evil.com` }],
    ['user-info smuggling (portal.example.org@evil.com)', { Origin: `${PORTAL}@evil.com` }],
    ['a look-alike prefix (evil-portal.example.org)', { Origin: 'https://evil-portal.example.org' }],
    ['the same host over plain http', { Origin: 'http://portal.example.org' }],
    ['the same host on another port', { Origin: `${PORTAL}:8443` }],
    ['the same origin upper-cased', { Origin: PORTAL.toUpperCase() }],
    ['the origin with a path', { Origin: `${PORTAL}/vnc` }],
    ['a trailing dot on the host', { Origin: `${PORTAL}.` }],
    ['the old hybi header instead of Origin', { 'Sec-WebSocket-Origin': PORTAL }],
  ];
  for (const [name, headers] of hostile) {
    it(`refuses ${name} with 403 and never dials the target`, async () => {
      const before = target.sockets.length;
      expect(await outcome(`ws://127.0.0.1:${cli.port}/websockify`, headers)).to.equal('status 403');
      expect(target.sockets.length, 'target dialled for a refused origin').to.equal(before);
    });
  }

  it('refuses two Origin headers, one good and one bad, in either order', async () => {
    for (const pair of [[PORTAL, 'https://evil.example'], ['https://evil.example', PORTAL]]) {
      const s = await rawSession(cli.port, { headers: pair.map((o) => `Origin: ${o}`) });
      expect(s.status, s.headers).to.equal(403);
      s.destroy();
    }
  });

  it('lets the configured origins in and relays bytes', async () => {
    for (const origin of [PORTAL, 'http://127.0.0.1:8080']) {
      const ws = new WebSocket(`ws://127.0.0.1:${cli.port}/websockify`, 'binary', { headers: { Origin: origin } });
      await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
      ws.send(Buffer.from('hello'));
      const msg = await new Promise<Buffer>((resolve) => ws.once('message', (d: Buffer) => resolve(d)));
      expect(msg.toString()).to.equal('hello');
      ws.close();
      await new Promise((r) => ws.once('close', r));
    }
  });

  it('logs the refused origin without failing the process', async () => {
    expect(cli.proc.child.exitCode).to.equal(null);
    expect(cli.output()).to.match(/handshake refused/);
  });
});
