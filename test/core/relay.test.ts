import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import WebSocket from 'ws';
import { createServer, type TsockifyServer, type SessionCloseInfo, type TsockifyOptions } from '../../packages/core/src/index.js';
import { READ_BUFFER_SIZE, freeReadBuffers } from '../../packages/core/src/read-buffers.js';
import { TARGET_READS } from '../../packages/core/src/relay.js';
import { HOLD_LIMIT, adoptDialled, dialTarget } from '../../packages/core/src/target.js';
import { startTcpTarget, type TcpTargetServer } from '../helpers/net.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function startRelay(opts: TsockifyOptions): Promise<TsockifyServer> {
  const server = createServer({ listen: { host: '127.0.0.1', port: 0 }, ...opts });
  await server.listen();
  return server;
}

function connect(server: TsockifyServer, path = '/websockify', protocols: string | string[] = 'binary'): WebSocket {
  return new WebSocket(`ws://127.0.0.1:${server.port}${path}`, protocols);
}

/** Collect every message and the close of a client. */
function collect(ws: WebSocket): { messages: Buffer[]; closed: Promise<{ code: number; reason: string }> } {
  const messages: Buffer[] = [];
  ws.on('message', (d: Buffer) => messages.push(d));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
  return { messages, closed };
}

describe('relay', () => {
  let target: TcpTargetServer | undefined;
  let server: TsockifyServer | undefined;

  afterEach(async () => {
    await server?.close();
    await target?.close();
    server = undefined;
    target = undefined;
  });

  describe('bytes', () => {
    it('carries random bytes both ways unchanged and in order', async () => {
      target = await startTcpTarget();
      server = await startRelay({ target: `127.0.0.1:${target.port}` });
      const ws = connect(server);
      const { messages } = collect(ws);
      await once(ws, 'open');
      const sent = randomBytes(3 * 1024 * 1024 + 17);
      for (let off = 0; off < sent.length; off += 50_000) ws.send(sent.subarray(off, off + 50_000));
      while (messages.reduce((n, m) => n + m.length, 0) < sent.length) await new Promise((r) => setTimeout(r, 20));
      expect(sha(Buffer.concat(messages))).to.equal(sha(sent));
      ws.close();
    });

    it('sends each target read as binary messages of at most 65536 bytes', async () => {
      const payload = randomBytes(4 * 1024 * 1024);
      target = await startTcpTarget((s) => s.end(payload));
      server = await startRelay({ target: `127.0.0.1:${target.port}` });
      const ws = connect(server);
      const { messages, closed } = collect(ws);
      const result = await closed;
      expect(result).to.deep.equal({ code: 1000, reason: 'Target closed' });
      expect(Math.max(...messages.map((m) => m.length))).to.be.at.most(65536);
      expect(sha(Buffer.concat(messages))).to.equal(sha(payload));
    });

    it('answers pings with pongs carrying the same payload', async () => {
      target = await startTcpTarget();
      server = await startRelay({ target: `127.0.0.1:${target.port}` });
      const ws = connect(server);
      await once(ws, 'open');
      ws.ping(Buffer.from('hello'));
      const [data] = await once(ws, 'pong');
      expect((data as Buffer).toString()).to.equal('hello');
      ws.close();
    });
  });

  describe('close handling', () => {
    it('flushes everything the target wrote, then closes 1000 "Target closed"', async () => {
      const payload = randomBytes(1024 * 1024);
      target = await startTcpTarget((s) => { s.write(payload.subarray(0, 1000)); setTimeout(() => s.end(payload.subarray(1000)), 50); });
      server = await startRelay({ target: `127.0.0.1:${target.port}` });
      const ws = connect(server);
      const { messages, closed } = collect(ws);
      expect(await closed).to.deep.equal({ code: 1000, reason: 'Target closed' });
      expect(sha(Buffer.concat(messages))).to.equal(sha(payload));
    });

    it('delivers client data to the target, then EOF, and echoes the client close code and reason', async () => {
      const received: Buffer[] = [];
      let gotEof: () => void = () => {};
      const eof = new Promise<void>((r) => { gotEof = r; });
      target = await startTcpTarget((s) => { s.on('data', (d) => received.push(d)); s.on('end', () => { gotEof(); s.end(); }); });
      server = await startRelay({ target: `127.0.0.1:${target.port}` });
      const closes: SessionCloseInfo[] = [];
      server.on('sessionClose', (i) => closes.push(i));
      const ws = connect(server);
      const { closed } = collect(ws);
      await once(ws, 'open');
      const sent = randomBytes(500_000);
      ws.send(sent);
      ws.close(4000, 'bye');
      expect(await closed).to.deep.equal({ code: 4000, reason: 'bye' });
      await eof;
      expect(sha(Buffer.concat(received))).to.equal(sha(sent));
      await new Promise((r) => setTimeout(r, 20));
      expect(closes).to.have.length(1);
      expect(closes[0]).to.include({ code: 4000, reason: 'bye', initiator: 'client', bytesToTarget: sent.length });
    });

    it('closes 1003 on a text frame', async () => {
      target = await startTcpTarget();
      server = await startRelay({ target: `127.0.0.1:${target.port}` });
      const ws = connect(server);
      const { closed } = collect(ws);
      await once(ws, 'open');
      ws.send('text is not VNC');
      expect((await closed).code).to.equal(1003);
    });

    it('closes 1009 on a message over maxMessageSize', async () => {
      target = await startTcpTarget();
      server = await startRelay({ target: `127.0.0.1:${target.port}`, maxMessageSize: 1000 });
      const ws = connect(server);
      const { closed } = collect(ws);
      ws.on('error', () => {});
      await once(ws, 'open');
      ws.send(Buffer.alloc(1001));
      expect((await closed).code).to.equal(1009);
    });

    it('closes 1011 when the target resets mid-stream', async () => {
      target = await startTcpTarget((s) => { s.write('RFB 003.008\n'); setTimeout(() => s.resetAndDestroy(), 50); });
      server = await startRelay({ target: `127.0.0.1:${target.port}` });
      const ws = connect(server);
      const { closed } = collect(ws);
      expect((await closed).code).to.equal(1011);
    });

    it('emits exactly one sessionClose per session with byte counts', async () => {
      target = await startTcpTarget((s) => s.end(Buffer.alloc(1234)));
      server = await startRelay({ target: `127.0.0.1:${target.port}` });
      const closes: SessionCloseInfo[] = [];
      server.on('sessionClose', (i) => closes.push(i));
      const ws = connect(server);
      await collect(ws).closed;
      await new Promise((r) => setTimeout(r, 50));
      expect(closes).to.have.length(1);
      expect(closes[0]).to.include({ bytesToClient: 1234, bytesToTarget: 0, initiator: 'target', code: 1000 });
    });
  });

  describe('backpressure', () => {
    it('stops reading the target while the client does not read, and loses nothing', async () => {
      const total = 64 * 1024 * 1024;
      const payload = randomBytes(total);
      let targetSocket: net.Socket | undefined;
      target = await startTcpTarget((s) => { targetSocket = s; s.end(payload); });
      server = await startRelay({ target: `127.0.0.1:${target.port}` });
      const ws = connect(server);
      await once(ws, 'open');
      // Stop reading on the client's TCP socket: the proxy must stop pulling from the target.
      const raw = (ws as unknown as { _socket: net.Socket })._socket;
      raw.pause();
      await new Promise((r) => setTimeout(r, 1000));
      const flushed = targetSocket!.bytesWritten - targetSocket!.writableLength;
      // Kernel buffers on two connections plus the proxy's high-water mark: far less than 64 MiB.
      expect(flushed).to.be.below(24 * 1024 * 1024);
      const { messages, closed } = collect(ws);
      raw.resume();
      expect((await closed).code).to.equal(1000);
      expect(sha(Buffer.concat(messages))).to.equal(sha(payload));
    });
  });
  describe('reused read buffers', () => {
    /** Write `payload` in pieces of mixed sizes, yielding between them so reads come short and full. */
    async function writeMixed(s: net.Socket, payload: Buffer, seed: number): Promise<void> {
      const sizes = [1, 7, 64, 2048, 2049, 5000, READ_BUFFER_SIZE, 3 * READ_BUFFER_SIZE + 5, 300_000];
      let off = 0;
      for (let i = seed; off < payload.length; i++) {
        const n = sizes[(i * 7 + seed) % sizes.length]!;
        const ok = s.write(payload.subarray(off, off + n));
        off += n;
        if (!ok) await once(s, 'drain');
        else if (i % 3 === 0) await new Promise((r) => setImmediate(r));
      }
      s.end();
    }

    it('keeps concurrent sessions apart through small, large and backpressured reads', async () => {
      const sent = new Set<string>();
      let seed = 0;
      target = await startTcpTarget((s) => {
        const payload = randomBytes(6 * 1024 * 1024 + seed * 977);
        sent.add(sha(payload));
        void writeMixed(s, payload, seed++);
      });
      server = await startRelay({ target: `127.0.0.1:${target.port}` });
      const received = await Promise.all(Array.from({ length: 8 }, async (_, i) => {
        const ws = connect(server!);
        const { messages, closed } = collect(ws);
        await once(ws, 'open');
        if (i % 2 === 1) {
          // Half the clients stall for a while: their reads back up while the others stream.
          const raw = (ws as unknown as { _socket: net.Socket })._socket;
          raw.pause();
          setTimeout(() => raw.resume(), 300);
        }
        expect((await closed).code).to.equal(1000);
        expect(Math.max(...messages.map((m) => m.length))).to.be.at.most(READ_BUFFER_SIZE);
        return sha(Buffer.concat(messages));
      }));
      expect(new Set(received)).to.deep.equal(sent);
    });

    it('gives pooled buffers back once ws has written them, and keeps at most 64', async () => {
      target = await startTcpTarget((s) => { void writeMixed(s, randomBytes(16 * 1024 * 1024), 3); });
      server = await startRelay({ target: `127.0.0.1:${target.port}` });
      const ws = connect(server);
      const { messages, closed } = collect(ws);
      expect((await closed).code).to.equal(1000);
      expect(messages.reduce((n, m) => n + m.length, 0)).to.equal(16 * 1024 * 1024);
      await new Promise((r) => setImmediate(r));
      expect(freeReadBuffers()).to.be.within(1, 64);
    });
  });
  describe('bytes before the session starts', () => {
    it('keeps what the target sends before the upgrade is answered, up to a limit, then stops reading', async () => {
      const payload = randomBytes(4 * HOLD_LIMIT);
      target = await startTcpTarget((s) => s.end(payload));
      const socket = await dialTarget({ host: '127.0.0.1', port: target.port }, { timeoutMs: 2000, tls: undefined, onread: TARGET_READS });
      await new Promise((r) => setTimeout(r, 300));
      const held = adoptDialled(socket)!;
      expect(held.bytes).to.be.within(HOLD_LIMIT, HOLD_LIMIT + READ_BUFFER_SIZE);
      expect(Buffer.concat(held.chunks).equals(payload.subarray(0, held.bytes))).to.equal(true);
      expect(held.ended).to.equal(false);
      expect(socket.isPaused()).to.equal(true);
      socket.destroy();
    });

    it('keeps an EOF and a reset that come before the session, instead of losing or throwing them', async () => {
      target = await startTcpTarget((s) => { s.write('RFB 003.008\n'); s.end(); });
      const ended = await dialTarget({ host: '127.0.0.1', port: target.port }, { timeoutMs: 2000, tls: undefined, onread: TARGET_READS });
      await new Promise((r) => setTimeout(r, 200));
      const heldEnd = adoptDialled(ended)!;
      expect(Buffer.concat(heldEnd.chunks).toString()).to.equal('RFB 003.008\n');
      expect(heldEnd.ended).to.equal(true);
      ended.destroy();
      await target.close();

      target = await startTcpTarget((s) => { s.write('RFB'); setTimeout(() => s.resetAndDestroy(), 20); });
      const reset = await dialTarget({ host: '127.0.0.1', port: target.port }, { timeoutMs: 2000, tls: undefined, onread: TARGET_READS });
      await new Promise((r) => setTimeout(r, 200));
      const heldReset = adoptDialled(reset)!;
      expect(heldReset.error, 'the reset is held, not thrown').to.be.instanceOf(Error);
      reset.destroy();
    });

    it('relays a greeting and a reset that came before the upgrade was answered (1011), and keeps serving', async () => {
      target = await startTcpTarget((s) => { s.write('RFB 003.008\n'); setTimeout(() => s.resetAndDestroy(), 5); });
      server = await startRelay({ target: `127.0.0.1:${target.port}` });
      const errors: Error[] = [];
      server.on('error', (e) => errors.push(e));
      const ws = connect(server);
      ws.on('error', () => {});
      const { messages, closed } = collect(ws);
      const result = await closed;
      // Either the reset beat the upgrade (the session starts and ends at once) or it came later:
      // the greeting is never lost and the close is 1011 either way.
      expect(Buffer.concat(messages).toString()).to.equal('RFB 003.008\n');
      expect(result.code).to.equal(1011);
      expect(errors).to.deep.equal([]);
    });
  });
});
