/**
 * Target-side faults against an in-process server: a reset mid-stream, a target that accepts
 * and never speaks, one that never closes after our FIN, one that ends after a burst. Beside
 * each fault a good session streams through the same server to an echo target and must get
 * its bytes back exactly; afterwards no session, socket or timer is left.
 */
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type TokenPlugin } from '../../packages/core/src/index.js';
import { startTcpTarget } from '../helpers/net.js';
import { openClient, until } from './client-helper.js';
import { useGuardedServer } from './guarded-server.js';

describe('faults: the target', function () {
  this.timeout(30_000);
  const g = useGuardedServer();
  const { closes } = g;

  it('closes the client with 1011 promptly when the target resets mid-stream', async () => {
    let resetAt = 0;
    g.fault = (s) => {
      s.write(randomBytes(100 * 1024));
      setTimeout(() => { resetAt = Date.now(); s.resetAndDestroy(); }, 100);
    };
    const c = await openClient(`ws://127.0.0.1:${g.server.port}/?token=fault`);
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
    g.fault = (s) => {
      s.on('data', (d: Buffer) => { got += d.length; });
      s.on('end', () => { targetEnded = true; s.end(); });
    };
    const c = await openClient(`ws://127.0.0.1:${g.server.port}/?token=fault`);
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
    g.fault = (s) => {
      // allowHalfOpen: the target keeps its side open forever, ignores our FIN and keeps
      // talking; once tsockify destroys its side, the next write is answered with a reset.
      const talk = setInterval(() => s.write('x'), 100);
      s.on('close', () => { clearInterval(talk); targetClosedAt = Date.now(); });
    };
    const c = await openClient(`ws://127.0.0.1:${g.server.port}/?token=fault`);
    const closedAt = Date.now();
    c.ws.close(1000);
    await c.closed;
    await until('the stubborn target released', () => targetClosedAt > 0, 8000);
    expect(targetClosedAt - closedAt).to.be.within(0, 6500);
  });

  it('delivers everything a target sent before its EOF, then closes 1000 "Target closed"', async () => {
    const burst = randomBytes(3 * 1024 * 1024);
    g.fault = (s) => { s.end(burst); };
    const c = await openClient(`ws://127.0.0.1:${g.server.port}/?token=fault`);
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
