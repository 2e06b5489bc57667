import { expect } from 'chai';
import { once } from 'node:events';
import net from 'node:net';
import WebSocket from 'ws';
import { createServer, type TsockifyServer } from '../../packages/core/src/index.js';
import { startTcpTarget, type TcpTargetServer } from '../helpers/net.js';

function outcome(ws: WebSocket): Promise<string> {
  return new Promise((resolve) => {
    ws.on('open', () => resolve('open'));
    ws.on('unexpected-response', (_q, res) => resolve(`status ${res.statusCode} retry-after ${res.headers['retry-after']}`));
    ws.on('error', (err) => resolve(`error ${err.message}`));
  });
}

describe('limits', () => {
  let target: TcpTargetServer;
  let server: TsockifyServer | undefined;
  before(async () => { target = await startTcpTarget(); });
  after(async () => { await target.close(); });
  afterEach(async () => { await server?.close(); server = undefined; });

  async function start(opts: Parameters<typeof createServer>[0]): Promise<TsockifyServer> {
    server = createServer({ listen: { host: '127.0.0.1', port: 0 }, target: `127.0.0.1:${target.port}`, ...opts });
    await server.listen();
    return server;
  }

  describe('maxConnectionsPerClient', () => {
    it('refuses the excess connection from one address with 429 and leaves the others working', async () => {
      const s = await start({ maxConnectionsPerClient: 2 });
      const a = new WebSocket(`ws://127.0.0.1:${s.port}/`, 'binary');
      const b = new WebSocket(`ws://127.0.0.1:${s.port}/`, 'binary');
      expect(await outcome(a)).to.equal('open');
      expect(await outcome(b)).to.equal('open');
      expect(await outcome(new WebSocket(`ws://127.0.0.1:${s.port}/`, 'binary'))).to.equal('status 429 retry-after 5');
      // Another loopback address is another client.
      expect(await outcome(new WebSocket(`ws://127.0.0.1:${s.port}/`, 'binary', { localAddress: '127.0.0.2' }))).to.equal('open');
      a.send(Buffer.from('still echoing'));
      const [m] = await once(a, 'message');
      expect(String(m)).to.equal('still echoing');
      a.close();
      await once(a, 'close');
      await new Promise((r) => setTimeout(r, 50));
      expect(await outcome(new WebSocket(`ws://127.0.0.1:${s.port}/`, 'binary'))).to.equal('open');
    });
  });

  describe('maxConnections', () => {
    it('refuses connections over the overall limit with 503', async () => {
      const s = await start({ maxConnections: 1 });
      expect(await outcome(new WebSocket(`ws://127.0.0.1:${s.port}/`, 'binary'))).to.equal('open');
      expect(await outcome(new WebSocket(`ws://127.0.0.1:${s.port}/`, 'binary'))).to.equal('status 503 retry-after 5');
    });
  });

  describe('headersTimeoutMs', () => {
    it('cuts off a client that holds its request headers open (slowloris)', async () => {
      const s = await start({ headersTimeoutMs: 500 });
      const raw = net.connect(s.port, '127.0.0.1');
      raw.on('error', () => {});
      await once(raw, 'connect');
      raw.write('GET / HTTP/1.1\r\nHost: x\r\n');
      const keep = setInterval(() => raw.write('X-Slow: 1\r\n'), 100);
      const started = Date.now();
      raw.resume();
      await once(raw, 'close');
      clearInterval(keep);
      // Bounded by the timeout plus the 1 s check interval, far from "never".
      expect(Date.now() - started).to.be.below(5000);
    });
  });

  describe('sessionIdleTimeoutMs', () => {
    it('closes a session with no bytes either way, with 1000 "Idle timeout"', async () => {
      const s = await start({ sessionIdleTimeoutMs: 200 });
      const ws = new WebSocket(`ws://127.0.0.1:${s.port}/`, 'binary');
      const [code, reason] = await once(ws, 'close');
      expect([code, String(reason)]).to.deep.equal([1000, 'Idle timeout']);
    });
  });
  describe('a client that leaves while its upgrade waits', () => {
    it('costs no dial and frees its per-client slot', async () => {
      let release!: () => void;
      const gate = new Promise<void>((r) => { release = r; });
      let resolveLooked!: () => void;
      const looked = new Promise<void>((r) => { resolveLooked = r; });
      await start({
        target: undefined,
        maxConnectionsPerClient: 1,
        tokenPlugin: {
          lookup: async (token) => {
            if (token === 'slow') { resolveLooked(); await gate; }
            return { host: '127.0.0.1', port: target.port };
          },
        },
      });
      await new Promise((r) => setTimeout(r, 50));
      const before = target.sockets.length;
      const leaving = new WebSocket(`ws://127.0.0.1:${server!.port}/?token=slow`, 'binary');
      leaving.on('error', () => { /* terminated on purpose */ });
      await looked;
      leaving.terminate();
      await new Promise((r) => setTimeout(r, 50));
      release();
      await new Promise((r) => setTimeout(r, 100));
      expect(target.sockets.length, 'no dial for a client that left').to.equal(before);
      // The slot came back: with a limit of one, the next client from this address is let in.
      expect(await outcome(new WebSocket(`ws://127.0.0.1:${server!.port}/?token=fast`, 'binary'))).to.equal('open');
    });
  });
});
