/**
 * Client-side faults against an in-process server with a short heartbeat: a client that
 * vanishes without a close (frozen, no pongs), one that resets, and client and target closing
 * at the same moment. The target side must be released within the dead-peer timeout, each
 * session must end exactly once, a good session beside them keeps its bytes exact, and no
 * socket or timer is left behind.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import { createServer, type SessionCloseInfo, type TokenPlugin, type TsockifyServer } from '../../packages/core/src/index.js';
import { startTcpTarget, type TcpTargetServer } from '../helpers/net.js';
import { startGoodSession, type GoodSession } from '../fuzz/good-session.js';
import { OP, buildFrame, rawSession } from '../fuzz/frame-builder.js';
import { openClient, until } from './client-helper.js';
import { baselineCounts, expectNoHandleLeak, type Counts } from './leaks.js';

const HEARTBEAT_MS = 200;

describe('faults: the client', function () {
  this.timeout(30_000);
  let echo: TcpTargetServer;
  let other: TcpTargetServer;
  let onOther: (s: net.Socket) => void = () => {};
  let server: TsockifyServer;
  let good: GoodSession;
  let baseline: Counts;
  const closes: SessionCloseInfo[] = [];
  const errors: Error[] = [];

  before(async () => {
    echo = await startTcpTarget();
    other = await startTcpTarget((s) => onOther(s));
    const tokens: TokenPlugin = {
      lookup: (t) => (t === 'echo' ? { host: '127.0.0.1', port: echo.port } : { host: '127.0.0.1', port: other.port }),
    };
    server = createServer({ listen: { host: '127.0.0.1', port: 0 }, tokenPlugin: tokens, heartbeatMs: HEARTBEAT_MS });
    server.on('sessionClose', (i) => closes.push(i));
    server.on('error', (e) => errors.push(e));
    await server.listen();
  });
  after(async () => {
    await server?.close();
    await echo?.close();
    await other?.close();
  });

  beforeEach(async () => {
    baseline = await baselineCounts();
    good = await startGoodSession(`ws://127.0.0.1:${server.port}/?token=echo`);
  });
  afterEach(async function () {
    const r = await good.finish();
    if (this.currentTest?.state === 'failed') return;
    expect(r.unexpectedClose, 'the good session (which answers pings) was closed').to.equal(undefined);
    expect(r.echoedSha256).to.equal(r.sentSha256);
    await until('no live session', () => server.sessionCount === 0 && server.pendingCount === 0);
    await until('target sockets closed', () => other.sockets.every((s) => s.destroyed));
    await expectNoHandleLeak(baseline);
    expect(errors).to.deep.equal([]);
  });

  it('releases the target of a client that vanished without a close, within the dead-peer timeout (2 missed pongs)', async () => {
    let targetClosedAt = 0;
    onOther = (s) => { s.resume(); s.on('close', () => { targetClosedAt = Date.now(); }); s.on('end', () => s.end()); };
    const before = closes.length;
    // A frozen client: handshake done, then it neither reads nor answers pings, and sends no close.
    const frozen = await rawSession(server.port, { path: '/?token=other', answerPings: false });
    expect(frozen.status).to.equal(101);
    const vanishedAt = Date.now();
    frozen.socket.pause();
    await until('target released', () => targetClosedAt > 0, 10 * HEARTBEAT_MS + 2000);
    // Detected at the third beat at the latest (two unanswered pings), plus scheduling slack.
    expect(targetClosedAt - vanishedAt).to.be.below(3 * HEARTBEAT_MS + 1000);
    await until('sessionClose', () => closes.length > before);
    expect(closes.at(-1)!.error).to.match(/dead peer/);
    frozen.destroy();
  });

  it('keeps a quiet client that answers pings for many heartbeats', async () => {
    onOther = (s) => { s.resume(); s.on('end', () => s.end()); };
    const c = await openClient(`ws://127.0.0.1:${server.port}/?token=other`);
    await new Promise((r) => setTimeout(r, 10 * HEARTBEAT_MS));
    expect(c.ws.readyState).to.equal(c.ws.OPEN);
    c.ws.close(1000);
    expect((await c.closed).code).to.equal(1000);
  });

  it('releases the target promptly when the client resets its TCP connection', async () => {
    let targetClosedAt = 0;
    onOther = (s) => { s.resume(); s.on('close', () => { targetClosedAt = Date.now(); }); s.on('end', () => s.end()); };
    const c = await rawSession(server.port, { path: '/?token=other' });
    c.send(buildFrame({ opcode: OP.binary, payload: randomBytes(1000) }));
    await new Promise((r) => setTimeout(r, 50));
    const resetAt = Date.now();
    c.socket.resetAndDestroy();
    await until('target released', () => targetClosedAt > 0, 3000);
    expect(targetClosedAt - resetAt).to.be.below(1000);
  });

  it('ends each session exactly once when client and target close at the same moment (50 races)', async () => {
    const sockets: net.Socket[] = [];
    onOther = (s) => { sockets.push(s); s.resume(); s.on('end', () => s.end()); };
    const before = closes.length;
    const codes: number[] = [];
    for (let i = 0; i < 50; i++) {
      const c = await openClient(`ws://127.0.0.1:${server.port}/?token=other`);
      await until('target connected', () => sockets.length === i + 1);
      const t = sockets[i]!;
      // Same tick: the client's close frame and the target's FIN (or, every other round, an abrupt pair).
      if (i % 2 === 0) {
        c.ws.close(1000, 'client done');
        t.end();
      } else {
        c.ws.terminate();
        t.resetAndDestroy();
      }
      codes.push((await c.closed).code);
    }
    await until('every session closed once', () => closes.length - before >= 50);
    await new Promise((r) => setTimeout(r, 100));
    expect(closes.length - before, 'one sessionClose per session').to.equal(50);
    expect(new Set(closes.slice(before).map((x) => x.id)).size).to.equal(50);
    // Orderly rounds end with a close handshake; abrupt rounds with 1006 on the client.
    codes.forEach((code, i) => expect(code, `round ${i}`).to.equal(i % 2 === 0 ? 1000 : 1006));
  });
});
