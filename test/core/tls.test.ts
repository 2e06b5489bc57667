import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import WebSocket from 'ws';
import { createServer, type TsockifyServer } from '../../packages/core/src/index.js';
import { makeCerts, type CertSet } from '../helpers/certs.js';
import { startTcpTarget, type TcpTargetServer } from '../helpers/net.js';

async function echoOnce(ws: WebSocket, text: string): Promise<string> {
  await once(ws, 'open');
  ws.send(Buffer.from(text));
  const [msg] = await once(ws, 'message');
  ws.close();
  return (msg as Buffer).toString();
}

function outcome(ws: WebSocket): Promise<string> {
  return new Promise((resolve) => {
    ws.on('open', () => { resolve('open'); ws.close(); });
    ws.on('unexpected-response', (_q, res) => resolve(`status ${res.statusCode}`));
    ws.on('error', (err) => resolve(`error ${err.message}`));
  });
}

describe('tls', () => {
  let certs: CertSet;
  let target: TcpTargetServer;
  const servers: TsockifyServer[] = [];

  before(async () => {
    certs = makeCerts();
    target = await startTcpTarget();
  });
  after(async () => {
    await target.close();
    certs.cleanup();
  });
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
  });

  async function start(opts: Parameters<typeof createServer>[0]): Promise<TsockifyServer> {
    const s = createServer({ listen: { host: '127.0.0.1', port: 0 }, target: `127.0.0.1:${target.port}`, ...opts });
    servers.push(s);
    await s.listen();
    return s;
  }

  describe('one port for ws and wss', () => {
    it('serves plain ws and TLS wss on the same port, told apart by the first byte', async () => {
      const s = await start({ tls: { cert: fs.readFileSync(certs.serverCert), key: fs.readFileSync(certs.serverKey) } });
      expect(await echoOnce(new WebSocket(`ws://127.0.0.1:${s.port}/`, 'binary'), 'plain')).to.equal('plain');
      const wss = new WebSocket(`wss://localhost:${s.port}/`, 'binary', { ca: fs.readFileSync(certs.caCert) });
      expect(await echoOnce(wss, 'secure')).to.equal('secure');
      // Both kinds of connection are forgotten once closed (nothing left for close() to drop).
      const accepted = (s as unknown as { accepted: Set<unknown> }).accepted;
      for (let i = 0; i < 50 && accepted.size > 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(accepted.size).to.equal(0);
    });

    it('refuses plain connections with --ssl-only and still serves TLS', async () => {
      const s = await start({ tls: { cert: fs.readFileSync(certs.serverCert), key: fs.readFileSync(certs.serverKey), sslOnly: true } });
      expect(await outcome(new WebSocket(`ws://127.0.0.1:${s.port}/`, 'binary'))).to.equal('status 403');
      const wss = new WebSocket(`wss://localhost:${s.port}/`, 'binary', { ca: fs.readFileSync(certs.caCert) });
      expect(await echoOnce(wss, 'ok')).to.equal('ok');
    });

    it('survives TLS garbage on the TLS port and keeps serving', async () => {
      const s = await start({ tls: { cert: fs.readFileSync(certs.serverCert), key: fs.readFileSync(certs.serverKey) } });
      const raw = net.connect(s.port, '127.0.0.1');
      raw.on('error', () => {});
      await once(raw, 'connect');
      // A complete TLS record whose handshake message is nonsense.
      raw.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 0xff, 0xff, 0xff, 0xff, 0xff]));
      raw.resume(); // read the TLS alert, or 'close' never comes
      await once(raw, 'close');
      const wss = new WebSocket(`wss://localhost:${s.port}/`, 'binary', { ca: fs.readFileSync(certs.caCert) });
      expect(await echoOnce(wss, 'still here')).to.equal('still here');
    });
  });

  describe('client certificates', () => {
    it('requires a client certificate with verifyClient and refuses the handshake without one', async () => {
      const s = await start({
        tls: { cert: fs.readFileSync(certs.serverCert), key: fs.readFileSync(certs.serverKey), verifyClient: true, ca: fs.readFileSync(certs.caCert), sslOnly: true },
      });
      const without = await outcome(new WebSocket(`wss://localhost:${s.port}/`, 'binary', { ca: fs.readFileSync(certs.caCert) }));
      expect(without).to.match(/^error/);
      const withCert = new WebSocket(`wss://localhost:${s.port}/`, 'binary', {
        ca: fs.readFileSync(certs.caCert), cert: fs.readFileSync(certs.clientCert), key: fs.readFileSync(certs.clientKey),
      });
      expect(await echoOnce(withCert, 'alice')).to.equal('alice');
    });

    it('strips spoofed ssl_* headers in any case and sets SSL_CLIENT_S_DN_CN from the verified certificate', async () => {
      const seen: Array<string | string[] | undefined> = [];
      const s = await start({
        tls: { cert: fs.readFileSync(certs.serverCert), key: fs.readFileSync(certs.serverKey), verifyClient: true, ca: fs.readFileSync(certs.caCert) },
        authPlugin: { authenticate: (ctx) => { seen.push(ctx.headers['ssl_client_s_dn_cn']); } },
      });
      // Plain ws with a lowercase spoofed header: websockify 0.13 lets it through.
      const spoof = new WebSocket(`ws://127.0.0.1:${s.port}/`, 'binary', { headers: { ssl_client_s_dn_cn: 'admin', SSL_Client_S_DN_CN: 'admin' } });
      expect(await outcome(spoof)).to.equal('open');
      const real = new WebSocket(`wss://localhost:${s.port}/`, 'binary', {
        ca: fs.readFileSync(certs.caCert), cert: fs.readFileSync(certs.clientCert), key: fs.readFileSync(certs.clientKey),
        headers: { ssl_client_s_dn_cn: 'admin' },
      });
      expect(await outcome(real)).to.equal('open');
      expect(seen).to.deep.equal([undefined, 'alice']);
    });
  });

  describe('ssl target', () => {
    let tlsTarget: tls.Server;
    let tlsPort: number;

    before(async () => {
      tlsTarget = tls.createServer({ cert: fs.readFileSync(certs.selfCert), key: fs.readFileSync(certs.selfKey) }, (s) => s.pipe(s));
      tlsTarget.listen(0, '127.0.0.1');
      await once(tlsTarget, 'listening');
      tlsPort = (tlsTarget.address() as net.AddressInfo).port;
    });
    after(() => { tlsTarget.close(); });

    it('refuses a self-signed VNC certificate by default (502 with the reason)', async () => {
      const s = await start({ target: `127.0.0.1:${tlsPort}`, targetTls: true });
      expect(await outcome(new WebSocket(`ws://127.0.0.1:${s.port}/`, 'binary'))).to.equal('status 502');
    });

    it('trusts a self-signed certificate given as the CA, without a host-name check', async () => {
      const s = await start({ target: `127.0.0.1:${tlsPort}`, targetTls: { ca: fs.readFileSync(certs.selfCert), checkServerIdentity: false } });
      expect(await echoOnce(new WebSocket(`ws://127.0.0.1:${s.port}/`, 'binary'), 'via ca')).to.equal('via ca');
    });

    it('accepts a certificate pinned by SHA-256 fingerprint and refuses another', async () => {
      const fp = new X509Certificate(fs.readFileSync(certs.selfCert)).fingerprint256;
      const good = await start({ target: `127.0.0.1:${tlsPort}`, targetTls: { fingerprint256: fp } });
      expect(await echoOnce(new WebSocket(`ws://127.0.0.1:${good.port}/`, 'binary'), 'pinned')).to.equal('pinned');
      const other = new X509Certificate(fs.readFileSync(certs.caCert)).fingerprint256;
      const bad = await start({ target: `127.0.0.1:${tlsPort}`, targetTls: { fingerprint256: other } });
      expect(await outcome(new WebSocket(`ws://127.0.0.1:${bad.port}/`, 'binary'))).to.equal('status 502');
    });
  });
});
