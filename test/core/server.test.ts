import { expect } from 'chai';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { createServer, InvalidOptionError, type SessionCloseInfo } from '../../packages/core/src/index.js';
import { startTcpTarget, type TcpTargetServer } from '../helpers/net.js';

describe('TsockifyServer', () => {
  let target: TcpTargetServer;
  let dir: string;
  before(async () => {
    target = await startTcpTarget();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsockify-server-'));
  });
  after(async () => {
    await target.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  describe('#constructor', () => {
    it('rejects bad options at creation, naming the value', () => {
      expect(() => createServer({ target: 'nohost' })).to.throw(InvalidOptionError, /invalid target "nohost": expected host:port/);
      expect(() => createServer({ target: 'h:99999' })).to.throw(/port "99999"/);
      expect(() => createServer({ target: 'h:1', tokenPlugin: { lookup: () => null } })).to.throw(/mutually exclusive/);
      expect(() => createServer({ hostToken: true })).to.throw(/hostToken needs a tokenPlugin/);
      expect(() => createServer({ sessionIds: { first: 0 } })).to.throw(InvalidOptionError, 'invalid sessionIds.first 0: expected a whole number of at least 1');
      expect(() => createServer({ sessionIds: { step: 1.5 } })).to.throw(InvalidOptionError, 'invalid sessionIds.step 1.5: expected a whole number of at least 1');
    });
  });

  describe('sessionIds', () => {
    it('numbers sessions first, first + step, ... (one share of the ids per cluster worker)', async () => {
      const s = createServer({ listen: { host: '127.0.0.1', port: 0 }, target: `127.0.0.1:${target.port}`, sessionIds: { first: 2, step: 3 } });
      const ids: number[] = [];
      s.on('session', (info) => ids.push(info.id));
      await s.listen();
      for (let i = 0; i < 3; i++) {
        const ws = new WebSocket(`ws://127.0.0.1:${s.port}/`, 'binary');
        await once(ws, 'open');
        ws.close();
        await once(ws, 'close');
      }
      expect(ids).to.deep.equal([2, 5, 8]);
      await s.close();
    });
  });

  describe('#listen', () => {
    it('listens on a unix socket with the requested mode', async () => {
      const sock = path.join(dir, 'listen.sock');
      const s = createServer({ listen: { unixPath: sock, unixMode: 0o640 }, target: `127.0.0.1:${target.port}` });
      await s.listen();
      expect(fs.statSync(sock).mode & 0o777).to.equal(0o640);
      const ws = new WebSocket('ws+unix://' + sock + ':/websockify', 'binary');
      await once(ws, 'open');
      ws.send(Buffer.from('over unix'));
      const [m] = await once(ws, 'message');
      expect((m as Buffer).toString()).to.equal('over unix');
      ws.close();
      await s.close();
    });

    it('fails with a clear error when the port is taken', async () => {
      const a = createServer({ listen: { host: '127.0.0.1', port: 0 }, target: `127.0.0.1:${target.port}` });
      await a.listen();
      const b = createServer({ listen: { host: '127.0.0.1', port: a.port }, target: `127.0.0.1:${target.port}` });
      try {
        await b.listen();
        expect.fail('listen should have failed');
      } catch (err) {
        expect((err as Error).message).to.match(/cannot listen on 127\.0\.0\.1:\d+: address in use/);
      }
      await a.close();
    });

    it('listens on IPv4 and IPv6 when no host is given', async () => {
      const s = createServer({ listen: { port: 0 }, target: `127.0.0.1:${target.port}` });
      await s.listen();
      for (const host of ['127.0.0.1', '[::1]']) {
        const ws = new WebSocket(`ws://${host}:${s.port}/`, 'binary');
        await once(ws, 'open');
        ws.close();
      }
      await s.close();
    });
  });

  describe('unix target', () => {
    it('relays to a unix socket target', async () => {
      const sock = path.join(dir, 'vnc.sock');
      const vnc = net.createServer((c) => c.end('RFB 003.008\n'));
      vnc.listen(sock);
      await once(vnc, 'listening');
      const s = createServer({ listen: { host: '127.0.0.1', port: 0 }, target: { unixSocket: sock } });
      await s.listen();
      const ws = new WebSocket(`ws://127.0.0.1:${s.port}/`, 'binary');
      const [m] = await once(ws, 'message');
      expect((m as Buffer).toString()).to.equal('RFB 003.008\n');
      await s.close();
      vnc.close();
    });
  });

  describe('heartbeat', () => {
    it('pings clients and ends a session whose peer stopped answering', async () => {
      const s = createServer({ listen: { host: '127.0.0.1', port: 0 }, target: `127.0.0.1:${target.port}`, heartbeatMs: 100 });
      await s.listen();
      const closes: SessionCloseInfo[] = [];
      s.on('sessionClose', (i) => closes.push(i));
      const ws = new WebSocket(`ws://127.0.0.1:${s.port}/`, 'binary', { autoPong: false });
      let pings = 0;
      ws.on('ping', () => { pings++; });
      ws.on('error', () => {});
      await once(ws, 'close');
      expect(pings).to.be.at.least(2);
      await new Promise((r) => setTimeout(r, 50));
      expect(closes).to.have.length(1);
      expect(closes[0]!.error).to.match(/dead peer/);
      await s.close();
    });

    it('keeps a session that answers pings', async () => {
      const s = createServer({ listen: { host: '127.0.0.1', port: 0 }, target: `127.0.0.1:${target.port}`, heartbeatMs: 50 });
      await s.listen();
      const ws = new WebSocket(`ws://127.0.0.1:${s.port}/`, 'binary');
      await once(ws, 'open');
      await new Promise((r) => setTimeout(r, 400));
      expect(ws.readyState).to.equal(WebSocket.OPEN);
      expect(s.sessionCount).to.equal(1);
      ws.close();
      await s.close();
    });
  });

  describe('expiry', () => {
    it('closes a session with 1008 when its token expires', async () => {
      const s = createServer({
        listen: { host: '127.0.0.1', port: 0 },
        tokenPlugin: { lookup: () => ({ host: '127.0.0.1', port: target.port, expiresAt: Date.now() + 300 }) },
      });
      await s.listen();
      const ws = new WebSocket(`ws://127.0.0.1:${s.port}/?token=t`, 'binary');
      const [code, reason] = await once(ws, 'close');
      expect(code).to.equal(1008);
      expect(String(reason)).to.equal('Token expired');
      await s.close();
    });
  });

  describe('#close', () => {
    it('closes live sessions with 1001 and releases every socket', async () => {
      const s = createServer({ listen: { host: '127.0.0.1', port: 0 }, target: `127.0.0.1:${target.port}` });
      await s.listen();
      const clients = await Promise.all([1, 2, 3].map(async () => {
        const ws = new WebSocket(`ws://127.0.0.1:${s.port}/`, 'binary');
        await once(ws, 'open');
        return ws;
      }));
      const codes = clients.map((ws) => once(ws, 'close').then(([c]) => c as number));
      await s.close();
      expect(await Promise.all(codes)).to.deep.equal([1001, 1001, 1001]);
      expect(s.sessionCount).to.equal(0);
    });

    it('forgets each accepted connection when it closes (nothing kept for close() to drop)', async () => {
      const s = createServer({ listen: { host: '127.0.0.1', port: 0 }, target: `127.0.0.1:${target.port}` });
      await s.listen();
      const accepted = (s as unknown as { accepted: Set<net.Socket> }).accepted;
      for (let i = 0; i < 5; i++) {
        const ws = new WebSocket(`ws://127.0.0.1:${s.port}/`, 'binary');
        await once(ws, 'open');
        ws.close();
        await once(ws, 'close');
      }
      const plain = net.connect(s.port, '127.0.0.1');
      await once(plain, 'connect');
      plain.destroy();
      for (let i = 0; i < 50 && accepted.size > 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(accepted.size).to.equal(0);
      await s.close();
    });
  });
});
