/**
 * Target-side faults against an in-process server: a reset mid-stream, a target that accepts
 * and never speaks, one that never closes after our FIN, one that ends after a burst. Beside
 * each fault a good session streams through the same server to an echo target and must get
 * its bytes back exactly; afterwards no session, socket or timer is left.
 */
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import type net from 'node:net';
import { createServer, type SessionCloseInfo, type TokenPlugin, type TsockifyServer } from '../../packages/core/src/index.js';
import { startTcpTarget, type TcpTargetServer } from '../helpers/net.js';
import { startGoodSession, type GoodSession } from '../fuzz/good-session.js';
import { openClient, until } from './client-helper.js';
import { baselineCounts, expectNoHandleLeak, type Counts } from './leaks.js';

type Mode = (s: net.Socket) => void;

describe('faults: the target', function () {
  this.timeout(30_000);
  let echo: TcpTargetServer;
  let faulty: TcpTargetServer;
  let mode: Mode = () => {};
  let server: TsockifyServer;
  let good: GoodSession;
  let baseline: Counts;
  const closes: SessionCloseInfo[] = [];
  const errors: Error[] = [];

  before(async () => {
    echo = await startTcpTarget();
    faulty = await startTcpTarget((s) => mode(s));
    const tokens: TokenPlugin = {
      lookup: (t) => (t === 'echo' ? { host: '127.0.0.1', port: echo.port } : t === 'fault' ? { host: '127.0.0.1', port: faulty.port } : null),
    };
    server = createServer({ listen: { host: '127.0.0.1', port: 0 }, tokenPlugin: tokens });
    server.on('sessionClose', (i) => closes.push(i));
    server.on('error', (e) => errors.push(e));
    await server.listen();
  });
  after(async () => {
    await server?.close();
    await echo?.close();
    await faulty?.close();
  });

  beforeEach(async () => {
    baseline = await baselineCounts();
    good = await startGoodSession(`ws://127.0.0.1:${server.port}/?token=echo`);
  });
  afterEach(async function () {
    const r = await good.finish();
    if (this.currentTest?.state === 'failed') return;
    expect(r.unexpectedClose, 'the good session was closed').to.equal(undefined);
    expect(r.echoedSha256, 'the good session lost or reordered bytes').to.equal(r.sentSha256);
    await until('no live session', () => server.sessionCount === 0 && server.pendingCount === 0);
    // The target side of every session is gone too.
    await until('target sockets closed', () => faulty.sockets.every((s) => s.destroyed) && echo.sockets.every((s) => s.destroyed));
    await expectNoHandleLeak(baseline);
    expect(errors).to.deep.equal([]);
  });

  it('closes the client with 1011 promptly when the target resets mid-stream', async () => {
    let resetAt = 0;
    mode = (s) => {
      s.write(randomBytes(100 * 1024));
      setTimeout(() => { resetAt = Date.now(); s.resetAndDestroy(); }, 100);
    };
    const c = await openClient(`ws://127.0.0.1:${server.port}/?token=fault`);
    const before = closes.length;
    const { code, at } = await c.closed;
    expect(code).to.equal(1011);
    expect(at - resetAt, 'ms from the reset to the close').to.be.below(1000);
    expect(c.received()).to.be.above(0);
    await until('sessionClose', () => closes.length > before);
    expect(closes.at(-1)).to.include({ initiator: 'target', code: 1011 });
  });

  it('keeps a session whose target accepts and never speaks, relays to it, and still closes on the client\'s close', async () => {
    let got = 0;
    let targetEnded = false;
    mode = (s) => {
      s.on('data', (d: Buffer) => { got += d.length; });
      s.on('end', () => { targetEnded = true; s.end(); });
    };
    const c = await openClient(`ws://127.0.0.1:${server.port}/?token=fault`);
    await new Promise((r) => setTimeout(r, 1000));
    expect(c.ws.readyState, 'still open after a second of silence').to.equal(c.ws.OPEN);
    c.ws.send(randomBytes(1000));
    await until('bytes at the silent target', () => got === 1000);
    c.ws.close(1000, 'bye');
    const { code, reason } = await c.closed;
    expect([code, reason]).to.deep.equal([1000, 'bye']);
    await until('the target got our FIN', () => targetEnded, 2000);
  });

  it('destroys a target that never closes after our FIN, within the 5 s linger', async function () {
    this.timeout(15_000);
    let targetClosedAt = 0;
    mode = (s) => {
      // allowHalfOpen: the target keeps its side open forever, ignores our FIN and keeps
      // talking; once tsockify destroys its side, the next write is answered with a reset.
      const talk = setInterval(() => s.write('x'), 100);
      s.on('close', () => { clearInterval(talk); targetClosedAt = Date.now(); });
    };
    const c = await openClient(`ws://127.0.0.1:${server.port}/?token=fault`);
    const closedAt = Date.now();
    c.ws.close(1000);
    await c.closed;
    await until('the stubborn target released', () => targetClosedAt > 0, 8000);
    expect(targetClosedAt - closedAt).to.be.within(0, 6500);
  });

  it('delivers everything a target sent before its EOF, then closes 1000 "Target closed"', async () => {
    const burst = randomBytes(3 * 1024 * 1024);
    mode = (s) => { s.end(burst); };
    const c = await openClient(`ws://127.0.0.1:${server.port}/?token=fault`);
    const { code, reason } = await c.closed;
    expect([code, reason]).to.deep.equal([1000, 'Target closed']);
    expect(c.received()).to.equal(burst.length);
    expect(c.digest()).to.equal(createHash('sha256').update(burst).digest('hex'));
  });

  it('answers 502 when the target refuses the connection, and keeps serving', async () => {
    const refused = await startTcpTarget();
    const port = refused.port;
    await refused.close();
    const tokens: TokenPlugin = { lookup: () => ({ host: '127.0.0.1', port }) };
    const s = createServer({ listen: { host: '127.0.0.1', port: 0 }, tokenPlugin: tokens });
    await s.listen();
    try {
      const err = await openClient(`ws://127.0.0.1:${s.port}/?token=x`).then(() => 'open', (e: Error) => e.message);
      expect(err).to.equal('refused with 502');
    } finally {
      await s.close();
    }
  });
});
