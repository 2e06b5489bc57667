import { expect } from 'chai';
import { once } from 'node:events';
import http from 'node:http';
import WebSocket from 'ws';
import { createServer, type TsockifyServer, type RejectInfo } from '../../packages/core/src/index.js';
import { chooseSubprotocol, hostWithoutPort, parseCookies } from '../../packages/core/src/upgrade.js';
import { freePort, startTcpTarget, type TcpTargetServer } from '../helpers/net.js';

function request(port: number, method: string, path = '/', headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Open a WebSocket and report either the chosen protocol or the HTTP status it was refused with. */
function tryUpgrade(url: string, protocols?: string | string[], headers: Record<string, string> = {}): Promise<{ open: boolean; protocol?: string; status?: number; body?: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, protocols, { headers });
    ws.on('open', () => { resolve({ open: true, protocol: ws.protocol }); ws.close(); });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => resolve({ open: false, status: res.statusCode ?? 0, body }));
    });
    ws.on('error', () => {});
  });
}

describe('upgrade', () => {
  let target: TcpTargetServer;
  let server: TsockifyServer;
  let url: string;

  before(async () => {
    target = await startTcpTarget();
    server = createServer({ listen: { host: '127.0.0.1', port: 0 }, target: `127.0.0.1:${target.port}` });
    await server.listen();
    url = `ws://127.0.0.1:${server.port}/websockify`;
  });
  after(async () => {
    await server.close();
    await target.close();
  });

  describe('#chooseSubprotocol', () => {
    it('trims list items, so "base64, binary" chooses binary', () => {
      expect(chooseSubprotocol('base64, binary')).to.equal('binary');
      expect(chooseSubprotocol(undefined)).to.equal(undefined);
      expect(() => chooseSubprotocol('base64')).to.throw(/only "binary"/);
    });
  });

  describe('#hostWithoutPort', () => {
    it('strips ports and IPv6 brackets', () => {
      expect(hostWithoutPort('desk.example:6080')).to.equal('desk.example');
      expect(hostWithoutPort('[::1]:6080')).to.equal('::1');
      expect(hostWithoutPort('desk.example')).to.equal('desk.example');
    });
  });

  describe('#parseCookies', () => {
    it('keeps the first value of a repeated cookie and decodes values', () => {
      expect(parseCookies('a=1; b=%20x; a=2')).to.deep.equal({ a: '1', b: ' x' });
    });
  });

  describe('handshake', () => {
    it('answers binary when offered', async () => {
      expect(await tryUpgrade(url, 'binary')).to.deep.equal({ open: true, protocol: 'binary' });
    });
    it('accepts no subprotocol (current noVNC offers none)', async () => {
      expect(await tryUpgrade(url)).to.deep.equal({ open: true, protocol: '' });
    });
    it('refuses a list without binary with 400', async () => {
      const r = await tryUpgrade(url, 'base64');
      expect(r.status).to.equal(400);
      expect(r.body).to.match(/only "binary"/);
    });
    it('accepts any path', async () => {
      expect((await tryUpgrade(`ws://127.0.0.1:${server.port}/any/path/at/all?x=1`, 'binary')).open).to.equal(true);
    });
  });

  describe('plain HTTP', () => {
    for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
      it(`answers ${method} with 405 without --web`, async () => {
        expect((await request(server.port, method)).status).to.equal(405);
      });
    }
  });

  describe('dial before upgrade', () => {
    it('answers 502 with a reason when the target refuses, and emits reject', async () => {
      const deadPort = await freePort();
      const s = createServer({ listen: { host: '127.0.0.1', port: 0 }, target: `127.0.0.1:${deadPort}` });
      await s.listen();
      const rejects: RejectInfo[] = [];
      s.on('reject', (r) => rejects.push(r));
      const r = await tryUpgrade(`ws://127.0.0.1:${s.port}/`, 'binary');
      expect(r.status).to.equal(502);
      // The client gets a short public reason; the log line keeps the address and the errno (cause).
      expect(r.body).to.equal('cannot connect to the VNC server\n');
      expect(rejects[0]).to.include({ status: 502, code: 'TSOCK_ERR_TARGET_UNREACHABLE' });
      await s.close();
    });
  });

  describe('refusal logs', () => {
    it('logs why a dial failed (address and errno) while the client gets only the public reason', async () => {
      const deadPort = await freePort();
      const lines: Array<Record<string, unknown>> = [];
      const log = (obj: object | string, msg?: string): void => { lines.push(typeof obj === 'string' ? { msg: obj } : { ...obj, msg }); };
      const logger = { debug: log, info: log, warn: log, error: log, child: () => logger };
      const s = createServer({ listen: { host: '127.0.0.1', port: 0 }, target: `127.0.0.1:${deadPort}`, logger });
      await s.listen();
      const r = await tryUpgrade(`ws://127.0.0.1:${s.port}/`, 'binary');
      await s.close();
      expect(r.status).to.equal(502);
      const refused = lines.find((l) => l.msg === 'handshake refused');
      expect(refused?.cause).to.equal(`connection refused by 127.0.0.1:${deadPort}`);
    });
  });

  describe('tokens', () => {
    it('answers 401 for a missing or unknown token, without the token in the reason', async () => {
      const s = createServer({
        listen: { host: '127.0.0.1', port: 0 },
        tokenPlugin: { lookup: (t) => (t === 'good' ? { host: '127.0.0.1', port: target.port } : null) },
      });
      await s.listen();
      const base = `ws://127.0.0.1:${s.port}/websockify`;
      expect((await tryUpgrade(base, 'binary')).status).to.equal(401);
      const bad = await tryUpgrade(`${base}?token=s3cret-guess`, 'binary');
      expect(bad.status).to.equal(401);
      expect(bad.body).to.not.include('s3cret');
      expect((await tryUpgrade(`${base}?token=&token=good`, 'binary')).status).to.equal(401);
      expect((await tryUpgrade(`${base}?token=go%6fd&token=bad`, 'binary')).open).to.equal(true);
      await s.close();
    });
  });

  describe('attach', () => {
    it('relays upgrades from an existing http.Server', async () => {
      const httpServer = http.createServer((_req, res) => res.end('app'));
      const s = createServer({ target: `127.0.0.1:${target.port}` }).attach(httpServer);
      httpServer.listen(0, '127.0.0.1');
      await once(httpServer, 'listening');
      const port = (httpServer.address() as { port: number }).port;
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`, 'binary');
      await once(ws, 'open');
      ws.send(Buffer.from('echo me'));
      const [msg] = await once(ws, 'message');
      expect((msg as Buffer).toString()).to.equal('echo me');
      ws.close();
      await once(ws, 'close');
      await s.close();
      httpServer.close();
    });
  });
});
