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
import { OP, buildFrame, rawSession } from '../fuzz/frame-builder.js';
import { openClient, until } from './client-helper.js';
import { useGuardedServer } from './guarded-server.js';

const HEARTBEAT_MS = 200;

describe('faults: the client', function () {
  this.timeout(30_000);
  const g = useGuardedServer({ heartbeatMs: HEARTBEAT_MS });
  const { closes } = g;

  it('releases the target of a client that vanished without a close, within the dead-peer timeout (2 missed pongs)', async () => {
    let targetClosedAt = 0;
    g.fault = (s) => { s.resume(); s.on('close', () => { targetClosedAt = Date.now(); }); s.on('end', () => s.end()); };
    const before = closes.length;
    // A frozen client: handshake done, then it neither reads nor answers pings, and sends no close.
    const frozen = await rawSession(g.server.port, { path: '/?token=fault', answerPings: false });
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
    g.fault = (s) => { s.resume(); s.on('end', () => s.end()); };
    const c = await openClient(`ws://127.0.0.1:${g.server.port}/?token=fault`);
    await new Promise((r) => setTimeout(r, 10 * HEARTBEAT_MS));
    expect(c.ws.readyState).to.equal(c.ws.OPEN);
    c.ws.close(1000);
    expect((await c.closed).code).to.equal(1000);
  });

  it('releases the target promptly when the client resets its TCP connection', async () => {
    let targetClosedAt = 0;
    g.fault = (s) => { s.resume(); s.on('close', () => { targetClosedAt = Date.now(); }); s.on('end', () => s.end()); };
    const c = await rawSession(g.server.port, { path: '/?token=fault' });
    c.send(buildFrame({ opcode: OP.binary, payload: randomBytes(1000) }));
    await new Promise((r) => setTimeout(r, 50));
    const resetAt = Date.now();
    c.socket.resetAndDestroy();
    await until('target released', () => targetClosedAt > 0, 3000);
    expect(targetClosedAt - resetAt).to.be.below(1000);
  });

  it('ends each session exactly once when client and target close at the same moment (50 races)', async () => {
    const sockets: net.Socket[] = [];
    g.fault = (s) => { sockets.push(s); s.resume(); s.on('end', () => s.end()); };
    const before = closes.length;
    const codes: number[] = [];
    for (let i = 0; i < 50; i++) {
      const c = await openClient(`ws://127.0.0.1:${g.server.port}/?token=fault`);
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
