import { expect } from 'chai';
import fs from 'node:fs';
import { once } from 'node:events';
import { execFileSync } from 'node:child_process';
import { PassThrough, Writable } from 'node:stream';
import { WebSocket } from 'ws';
import { TRAFFIC_LEGEND, createTrafficTracer } from '../../packages/core/src/traffic.js';
import { freePort, waitForPort, startTcpTarget } from '../helpers/net.js';
import { startProcess } from '../helpers/proc.js';

const tick = () => new Promise((r) => setImmediate(r));

function sink(): { out: PassThrough; text: () => string } {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d: Buffer) => { text += d.toString(); });
  return { out, text: () => text };
}

describe('TRAFFIC_LEGEND', () => {
  it("is websockify's legend text, newlines included", function () {
    if (!fs.existsSync('/usr/lib/python3/dist-packages/websockify/websocketproxy.py')) this.skip();
    const theirs = execFileSync('/usr/bin/python3', ['-c',
      'import sys; from websockify.websocketproxy import ProxyRequestHandler as P; sys.stdout.write(P.traffic_legend)']).toString();
    expect(TRAFFIC_LEGEND).to.equal(theirs);
  });

  describe('against websockify --traffic', () => {
    let websockify: ReturnType<typeof startProcess> | undefined;
    let target: Awaited<ReturnType<typeof startTcpTarget>> | undefined;
    afterEach(async () => {
      await websockify?.stop();
      await target?.close();
      websockify = undefined;
      target = undefined;
    });

    it('prints the same legend when a session connects, then only legend tokens', async function () {
      if (!fs.existsSync('/usr/bin/websockify')) this.skip();
      target = await startTcpTarget();
      const port = await freePort();
      websockify = startProcess('/usr/bin/websockify', ['--traffic', `127.0.0.1:${port}`, `127.0.0.1:${target.port}`]);
      await waitForPort(port);
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`, ['binary']);
      ws.on('error', (err) => { throw err; });
      await once(ws, 'open');
      ws.send(Buffer.from('ping'));
      await once(ws, 'message');
      ws.close(1000);
      await once(ws, 'close');
      const proc = websockify;
      const deadline = Date.now() + 10_000;
      while (!/[{}<>]*<$/.test(proc.stdout()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      const out = proc.stdout();
      const at = out.indexOf(TRAFFIC_LEGEND);
      expect(at, out).to.be.at.least(0);
      // One message each way: client receive, target send, target receive, client send.
      expect(out.slice(at + TRAFFIC_LEGEND.length)).to.match(/^(}\.?|\{|\.?>|<\.?)*$/);
      expect(out.slice(at + TRAFFIC_LEGEND.length).replace(/[^{}<>]/g, '')).to.equal('}>{<');
    });
  });
});

describe('createTrafficTracer', () => {
  it('writes one token per event, in order, partial ones with a dot', async () => {
    const { out, text } = sink();
    const t = createTrafficTracer(out);
    t.legend();
    t.clientReceive();
    t.clientReceivePartial();
    t.targetSend(true);
    t.targetSend(false);
    t.targetReceive();
    t.clientSend(true);
    t.clientSend(false);
    await tick();
    expect(text()).to.equal(`${TRAFFIC_LEGEND}}}.>>.{<<.`);
  });

  it('batches the tokens of one event-loop turn into one write', async () => {
    const writes: string[] = [];
    const out = new Writable({ write(chunk: Buffer, _enc, cb) { writes.push(chunk.toString()); cb(); } });
    const t = createTrafficTracer(out);
    for (let i = 0; i < 100; i++) t.targetReceive();
    expect(writes).to.have.length(0);
    await tick();
    expect(writes).to.deep.equal(['{'.repeat(100)]);
  });

  it('writes pending tokens at once on flush()', () => {
    const writes: string[] = [];
    const out = new Writable({ write(chunk: Buffer, _enc, cb) { writes.push(chunk.toString()); cb(); } });
    const t = createTrafficTracer(out);
    t.clientReceive();
    t.flush();
    expect(writes).to.deep.equal(['}']);
  });

  it('drops and counts output instead of buffering while the stream applies backpressure', async () => {
    // A stream that never drains: highWaterMark 1, callback never called.
    const out = new Writable({ highWaterMark: 1, write() { /* stuck */ } });
    const t = createTrafficTracer(out);
    t.clientReceive();
    await tick(); // first batch fills the stream
    expect(out.writableNeedDrain).to.equal(true);
    t.clientReceive();
    t.targetSend(false);
    await tick();
    expect(t.dropped).to.equal(3);
    expect(out.writableLength).to.equal(1);
  });

  it('caps the batch kept between flushes', () => {
    const out = new Writable({ write(_c, _e, cb) { cb(); } });
    const t = createTrafficTracer(out);
    for (let i = 0; i < 70_000; i++) t.targetReceive();
    expect(t.dropped).to.equal(70_000 - 64 * 1024);
  });
});
