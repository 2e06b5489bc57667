/**
 * Raw-socket fuzzing of the WebSocket framing layer of a running tsockify (in-process server,
 * real sockets). Each malformed input must get its documented close code (RFC 6455 7.4.1:
 * 1002 protocol error, 1007 bad UTF-8, 1009 too big; tsockify: 1003 for text frames) or HTTP
 * status, the server must keep serving, and a good session streaming through the same server
 * the whole time must get every byte back exactly (SHA-256).
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import fs from 'node:fs';
import fc from 'fast-check';
import { createServer, type SessionCloseInfo, type TsockifyServer } from '../../packages/core/src/index.js';
import { startTcpTarget, type TcpTargetServer } from '../helpers/net.js';
import { makeCerts, type CertSet } from '../helpers/certs.js';
import { OP, buildFrame, closePayload, rawExchange, rawSession, statusOf, type FrameSpec } from './frame-builder.js';
import { startGoodSession, type GoodSession } from './good-session.js';
import { baselineCounts, expectNoHandleLeak, type Counts } from '../faults/leaks.js';

const MAX_MESSAGE = 64 * 1024;

/** Send `frames` on a fresh session and return the close code the server answers with. */
async function closeCodeFor(port: number, frames: Buffer[], timeoutMs = 3000): Promise<number | null> {
  const s = await rawSession(port);
  expect(s.status, s.headers).to.equal(101);
  for (const f of frames) s.send(f);
  const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs).unref());
  const result = await Promise.race([s.closed, timer]);
  s.destroy();
  if (result === 'timeout') throw new Error(`no close from the server within ${timeoutMs} ms`);
  return result.code;
}

const f = (spec: FrameSpec): Buffer => buildFrame(spec);

describe('fuzz: WebSocket frames against a running tsockify', function () {
  this.timeout(60_000);
  let target: TcpTargetServer;
  let server: TsockifyServer;
  let good: GoodSession;
  let baseline: Counts;
  const closes: SessionCloseInfo[] = [];
  const errors: Error[] = [];

  before(async () => {
    baseline = await baselineCounts();
    target = await startTcpTarget();
    server = createServer({ listen: { host: '127.0.0.1', port: 0 }, target: `127.0.0.1:${target.port}`, maxMessageSize: MAX_MESSAGE });
    server.on('sessionClose', (i) => closes.push(i));
    server.on('error', (e) => errors.push(e));
    await server.listen();
    good = await startGoodSession(`ws://127.0.0.1:${server.port}/`);
  });

  after(async () => {
    await server?.close();
    await target?.close();
    await expectNoHandleLeak(baseline);
  });

  describe('opcodes and reserved bits', () => {
    for (const op of [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
      it(`closes with 1002 on reserved opcode 0x${op.toString(16)}`, async () => {
        expect(await closeCodeFor(server.port, [f({ opcode: op, payload: 'x' })])).to.equal(1002);
      });
    }
    for (const rsv of [1, 2, 4, 7]) {
      it(`closes with 1002 when reserved bits ${rsv.toString(2).padStart(3, '0')} are set without an extension`, async () => {
        expect(await closeCodeFor(server.port, [f({ opcode: OP.binary, rsv, payload: 'x' })])).to.equal(1002);
      });
    }
    it('closes with 1002 on a continuation frame with no message started', async () => {
      expect(await closeCodeFor(server.port, [f({ opcode: OP.cont, payload: 'x' })])).to.equal(1002);
    });
    it('closes with 1002 on a new data frame in the middle of a fragmented message', async () => {
      expect(await closeCodeFor(server.port, [f({ opcode: OP.binary, fin: false, payload: 'a' }), f({ opcode: OP.binary, payload: 'b' })])).to.equal(1002);
    });
    it('closes with 1002 on an unmasked client frame', async () => {
      expect(await closeCodeFor(server.port, [f({ opcode: OP.binary, mask: false, payload: 'x' })])).to.equal(1002);
    });
  });

  describe('control frames', () => {
    for (const op of [OP.ping, OP.pong, OP.close]) {
      it(`closes with 1002 on a fragmented control frame (opcode 0x${op.toString(16)}, FIN clear)`, async () => {
        expect(await closeCodeFor(server.port, [f({ opcode: op, fin: false, payload: op === OP.close ? closePayload(1000) : 'x' })])).to.equal(1002);
      });
    }
    it('closes with 1002 on a control frame longer than 125 bytes', async () => {
      expect(await closeCodeFor(server.port, [f({ opcode: OP.ping, payload: Buffer.alloc(126) })])).to.equal(1002);
    });
    it('closes with 1002 on a close frame with a 1-byte payload', async () => {
      expect(await closeCodeFor(server.port, [f({ opcode: OP.close, payload: Buffer.from([3]) })])).to.equal(1002);
    });
    for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2999, 5000, 65535]) {
      it(`closes with 1002 on the invalid close code ${code}`, async () => {
        expect(await closeCodeFor(server.port, [f({ opcode: OP.close, payload: closePayload(code) })])).to.equal(1002);
      });
    }
    for (const code of [1000, 1001, 1003, 1011, 3000, 4999]) {
      it(`echoes the valid close code ${code}`, async () => {
        expect(await closeCodeFor(server.port, [f({ opcode: OP.close, payload: closePayload(code, 'bye') })])).to.equal(code);
      });
    }
    const badUtf8: Array<[string, number[]]> = [
      ['a lone 0xff', [0xff]],
      ['an overlong slash', [0xc0, 0xaf]],
      ['a UTF-16 surrogate', [0xed, 0xa0, 0x80]],
      ['a truncated sequence', [0xe2, 0x82]],
      ['a code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
    ];
    for (const [name, bytes] of badUtf8) {
      it(`closes with 1007 on a close reason holding ${name}`, async () => {
        expect(await closeCodeFor(server.port, [f({ opcode: OP.close, payload: closePayload(1000, Buffer.from([0x6f, 0x6b, ...bytes])) })])).to.equal(1007);
      });
    }
    it('answers a ping inside a fragmented message with a pong carrying its payload, and relays the message', async () => {
      const s = await rawSession(server.port);
      s.send(Buffer.concat([
        f({ opcode: OP.binary, fin: false, payload: 'hel' }),
        f({ opcode: OP.ping, payload: 'p1' }),
        f({ opcode: OP.cont, payload: 'lo' }),
      ]));
      const deadline = Date.now() + 3000;
      while (Date.now() < deadline && !(s.frames.some((x) => x.opcode === OP.pong) && s.frames.some((x) => x.opcode === OP.binary))) {
        await new Promise((r) => setTimeout(r, 10));
      }
      s.destroy();
      expect(s.frames.find((x) => x.opcode === OP.pong)?.payload.toString()).to.equal('p1');
      expect(s.frames.find((x) => x.opcode === OP.binary)?.payload.toString()).to.equal('hello');
    });
  });

  describe('lengths', () => {
    it('closes with 1009 as soon as a header declares more than maxMessageSize, without waiting for the payload', async () => {
      const started = Date.now();
      expect(await closeCodeFor(server.port, [f({ opcode: OP.binary, declaredLength: MAX_MESSAGE + 1, payload: Buffer.alloc(0) })])).to.equal(1009);
      expect(Date.now() - started).to.be.below(1000);
    });
    for (const [name, len] of [
      ['2^63 (top bit set: negative as a signed 64-bit length)', 2n ** 63n],
      ['2^64 - 1 (-1 as a signed 64-bit length)', 2n ** 64n - 1n],
      ['2^53', 2n ** 53n],
      ['2^32', 2n ** 32n],
    ] as const) {
      it(`closes with 1009 on a 64-bit length of ${name}`, async () => {
        expect(await closeCodeFor(server.port, [f({ opcode: OP.binary, declaredLength: len, payload: Buffer.alloc(0) })])).to.equal(1009);
      });
    }
    it('closes with 1009 when fragments that are each small add up to more than maxMessageSize', async () => {
      const piece = Buffer.alloc(MAX_MESSAGE / 4 + 1);
      const frames = [f({ opcode: OP.binary, fin: false, payload: piece })];
      for (let i = 0; i < 3; i++) frames.push(f({ opcode: OP.cont, fin: i === 2, payload: piece }));
      expect(await closeCodeFor(server.port, frames)).to.equal(1009);
    });
    it('relays a message of exactly maxMessageSize', async () => {
      const s = await rawSession(server.port);
      const payload = randomBytes(MAX_MESSAGE);
      s.send(f({ opcode: OP.binary, payload }));
      const deadline = Date.now() + 5000;
      const got = (): Buffer => Buffer.concat(s.frames.filter((x) => x.opcode === OP.binary || x.opcode === OP.cont).map((x) => x.payload));
      while (Date.now() < deadline && got().length < payload.length) await new Promise((r) => setTimeout(r, 10));
      s.destroy();
      expect(got().equals(payload)).to.equal(true);
    });
    it('releases a session whose client sent a truncated frame and then vanished', async () => {
      const before = closes.length;
      const s = await rawSession(server.port);
      const whole = f({ opcode: OP.binary, payload: randomBytes(100) });
      s.send(whole.subarray(0, 20));
      await new Promise((r) => setTimeout(r, 50));
      s.destroy();
      const deadline = Date.now() + 3000;
      while (closes.length === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(closes.length).to.equal(before + 1);
      expect(closes.at(-1)!.code).to.equal(1006);
    });
    for (const [what, frame, code] of [
      ['an unmasked frame', () => f({ opcode: OP.binary, payload: randomBytes(10), mask: false }), 1002],
      ['a reserved opcode', () => f({ opcode: 0x3, payload: randomBytes(10) }), 1002],
      ['a message over the size cap', () => f({ opcode: OP.binary, payload: Buffer.alloc(MAX_MESSAGE + 1) }), 1009],
    ] as const) {
      it(`reports the close code ws sent for ${what} when the client vanishes without echoing it (${code}, not 1006)`, async () => {
        const before = closes.length;
        const s = await rawSession(server.port);
        s.send(frame());
        await new Promise((r) => setTimeout(r, 50));
        s.destroy();
        const deadline = Date.now() + 3000;
        while (closes.length === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
        expect(closes.length).to.equal(before + 1);
        expect(closes.at(-1)!.code).to.equal(code);
      });
    }
  });

  describe('text frames', () => {
    it('closes with 1003 on a text frame (websockify contract: binary only)', async () => {
      expect(await closeCodeFor(server.port, [f({ opcode: OP.text, payload: 'hello' })])).to.equal(1003);
    });
    it('closes with 1007 on a text frame that is not UTF-8', async () => {
      expect(await closeCodeFor(server.port, [f({ opcode: OP.text, payload: Buffer.from([0x68, 0xff, 0xfe]) })])).to.equal(1007);
    });
  });

  describe('random frame streams (fast-check)', () => {
    it('answers any byte stream after the handshake by relaying, a close code from the RFC set, or a dropped connection', async () => {
      const allowed = new Set([1000, 1002, 1003, 1007, 1009, null]);
      const frameArb = fc.record({
        fin: fc.boolean(),
        rsv: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 7 })),
        opcode: fc.oneof(fc.constantFrom(0, 1, 2, 8, 9, 10), fc.integer({ min: 0, max: 15 })),
        payload: fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
        mask: fc.oneof(fc.constant(true), fc.boolean()),
        declaredLength: fc.option(fc.oneof(fc.integer({ min: 0, max: 300 }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })), { nil: undefined }),
      });
      await fc.assert(
        fc.asyncProperty(fc.array(frameArb, { minLength: 1, maxLength: 6 }), fc.boolean(), async (frames, truncate) => {
          const s = await rawSession(server.port);
          let bytes = Buffer.concat(frames.map((fr) => buildFrame(fr)));
          if (truncate) bytes = bytes.subarray(0, Math.max(1, bytes.length - 3));
          s.send(bytes);
          // Then an orderly close of our own, so a stream that is merely incomplete ends too.
          s.send(buildFrame({ opcode: OP.close, payload: closePayload(1000) }));
          const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 500).unref());
          const res = await Promise.race([s.closed, timeout]);
          s.destroy();
          // Our close may be swallowed by an incomplete frame: then nothing is owed but survival.
          if (res !== 'timeout') expect(allowed.has(res.code), `close code ${res.code}`).to.equal(true);
        }),
        { numRuns: 120 },
      );
    });
  });

  describe('before the upgrade', () => {
    it('answers 400 to garbage before the request line', async () => {
      const s = await rawSession(server.port, { prefix: Buffer.from('\x00\x01garbage\xff\r\n') });
      expect(s.status).to.equal(400);
      s.destroy();
    });
    it('answers 400 to a TLS ClientHello byte on a port without TLS', async () => {
      const { data } = await rawExchange(server.port, Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05]), randomBytes(64)]));
      expect(statusOf(data)).to.equal(400);
    });
    it('answers random bytes before the upgrade with a status, or a 101 only when they were blank lines', async () => {
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 64 }), async (prefix) => {
          const { data } = await rawExchange(server.port, Buffer.concat([Buffer.from(prefix), Buffer.from(
            `GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
          )]), 2000);
          const status = statusOf(data);
          const blank = Buffer.from(prefix).every((b) => b === 0x0d || b === 0x0a);
          if (status === 101) expect(blank, `101 after prefix ${Buffer.from(prefix).toString('hex')}`).to.equal(true);
          else expect(status, `answer ${JSON.stringify(data.subarray(0, 80).toString('latin1'))}`).to.be.within(400, 499);
        }),
        { numRuns: 100 },
      );
    });
    it('answers a request with 1,500 header lines (past maxHeadersCount 100) with a status', async () => {
      // Node keeps the first 100 headers and drops the rest: the Upgrade headers at the end are lost.
      const many = Array.from({ length: 1500 }, (_, i) => `X-${i}: v`).join('\r\n');
      const { data } = await rawExchange(server.port, `GET / HTTP/1.1\r\nHost: x\r\n${many}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      expect(statusOf(data)).to.be.within(400, 499);
    });
    it('answers 431 to request headers larger than 16 KiB', async () => {
      const { data } = await rawExchange(server.port, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
      expect(statusOf(data)).to.equal(431);
    });
  });

  describe('the good session', () => {
    it('got back every byte it sent while all of the above ran (SHA-256)', async () => {
      const r = await good.finish();
      expect(r.unexpectedClose).to.equal(undefined);
      expect(r.bytes).to.be.above(256 * 1024);
      expect(r.echoedSha256).to.equal(r.sentSha256);
      expect(errors).to.deep.equal([]);
    });
    it('leaves no session, pending upgrade or per-session socket behind', async () => {
      const deadline = Date.now() + 3000;
      while ((server.sessionCount > 0 || server.pendingCount > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(server.sessionCount).to.equal(0);
      expect(server.pendingCount).to.equal(0);
    });
  });
});

describe('fuzz: TLS garbage on the TLS port', function () {
  this.timeout(30_000);
  let certs: CertSet;
  let target: TcpTargetServer;
  let server: TsockifyServer;
  let baseline: Counts;

  before(async () => {
    baseline = await baselineCounts();
    certs = makeCerts();
    target = await startTcpTarget();
    server = createServer({
      listen: { host: '127.0.0.1', port: 0 },
      target: `127.0.0.1:${target.port}`,
      tls: { cert: fs.readFileSync(certs.serverCert), key: fs.readFileSync(certs.serverKey) },
      headersTimeoutMs: 1000,
    });
    await server.listen();
  });
  after(async () => {
    await server?.close();
    await target?.close();
    certs?.cleanup();
    await expectNoHandleLeak(baseline);
  });

  /** Connect, write `bytes`, and resolve with how long the server took to drop us. */
  function dropTime(bytes: Buffer): Promise<number> {
    return new Promise((resolve) => {
      const started = Date.now();
      const s = net.connect(server.port, '127.0.0.1');
      s.on('error', () => {});
      s.on('data', () => {});
      s.on('close', () => resolve(Date.now() - started));
      s.once('connect', () => s.write(bytes));
    });
  }

  it('drops a TLS record of garbage (0x16 then random bytes) promptly', async () => {
    for (let i = 0; i < 10; i++) {
      expect(await dropTime(Buffer.concat([Buffer.from([0x16, 0x03, 0x01]), randomBytes(200)]))).to.be.below(1500);
    }
  });
  it('drops an SSLv2-style hello of garbage (0x80 then random bytes) promptly', async () => {
    expect(await dropTime(Buffer.concat([Buffer.from([0x80]), randomBytes(100)]))).to.be.below(1500);
  });
  it('drops a truncated ClientHello that never finishes within the handshake timeout', async () => {
    expect(await dropTime(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]))).to.be.below(2500);
  });
  it('answers 400 to garbage sent inside a good TLS connection', async () => {
    const data = await new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      const s = tls.connect({ port: server.port, host: '127.0.0.1', ca: fs.readFileSync(certs.caCert), servername: 'localhost' });
      s.on('error', () => {});
      s.on('data', (c: Buffer) => chunks.push(c));
      s.on('close', () => resolve(Buffer.concat(chunks)));
      s.once('secureConnect', () => s.write(Buffer.concat([randomBytes(32), Buffer.from('\r\n\r\n')])));
    });
    expect(statusOf(data)).to.equal(400);
  });
  it('still serves a good wss session after the garbage', async () => {
    const good = await startGoodSession(`wss://localhost:${server.port}/`, { clientOptions: { ca: fs.readFileSync(certs.caCert) } });
    const r = await good.finish();
    expect(r.echoedSha256).to.equal(r.sentSha256);
  });
});
