import { expect } from 'chai';
import { freePort } from '../helpers/net.js';
import { LISTEN, proxies, type RunningProxy } from './proxies.js';
import { itDiverges } from './divergences.js';
import { OP, closePayload, encodeFrame, rawConnect } from './raw.js';
import {
  collectUntilClose, openWs, patternBytes, programmableTarget, readToEnd, waitFor, type ProgrammableTarget,
} from './fixtures.js';

describe('compat', () => {
  for (const proxy of proxies) {
    describe(proxy.name, () => {
      let target: ProgrammableTarget;
      let running: RunningProxy;

      before(async () => {
        target = await programmableTarget();
        running = await proxy.start([LISTEN, `127.0.0.1:${target.port}`]);
      });
      after(async () => {
        await running?.stop();
        await target?.close();
      });

      describe('close handling', () => {
        it('delivers all target data, then closes 1000 "Target closed" on target EOF', async () => {
          const data = patternBytes(1024 * 1024, 3);
          target.behave((s) => { s.end(data); });
          const ws = await openWs(running.url());
          const { messages, code, reason } = await collectUntilClose(ws, 10_000);
          const got = Buffer.concat(messages.map((m) => m.data));
          expect(got.length).to.equal(data.length);
          expect(got.equals(data)).to.equal(true);
          expect(code).to.equal(1000);
          expect(reason).to.equal('Target closed');
        });

        it('echoes the client close code and reason, and ends the target after its data', async () => {
          target.behave(() => { /* sink: the test reads the socket */ });
          const sock = target.nextSocket();
          const ws = await openWs(running.url());
          const data = patternBytes(100_000, 5);
          const s = await sock;
          const ended = readToEnd(s);
          ws.send(data);
          const closed = collectUntilClose(ws);
          // Wait until the data is through before closing, so this test is about the close alone.
          await waitFor(() => s.bytesRead >= data.length, () => `target got ${s.bytesRead} of ${data.length} bytes`);
          ws.close(4000, 'bye');
          const { code, reason } = await closed;
          expect(code).to.equal(4000);
          expect(reason).to.equal('bye');
          const got = await ended;
          expect(got.equals(data), 'target got the data, then EOF').to.equal(true);
        });

        itDiverges(proxy.name, 'client-close-flush', 'writes client data that arrives with the close frame to the target before EOF', async (deviant) => {
          target.behave(() => { /* sink */ });
          const sock = target.nextSocket();
          const { ws } = await rawConnect(running.port);
          if (!ws) throw new Error('not upgraded');
          const s = await sock;
          const ended = readToEnd(s);
          const parts = [patternBytes(1000, 11), patternBytes(2000, 12), patternBytes(500, 13)];
          // Data frames and the close in ONE write, so they reach the proxy in one read.
          ws.write(Buffer.concat([...parts.map((p) => encodeFrame(OP.binary, p)), encodeFrame(OP.close, closePayload(4000, 'bye'))]));
          const { code, reason } = await ws.readUntilClose(5000);
          const got = await ended;
          ws.destroy();
          expect(code).to.equal(4000);
          expect(reason).to.equal('bye');
          if (deviant) {
            expect(got.length, 'data dropped').to.be.below(3500);
          } else {
            expect(got.equals(Buffer.concat(parts)), `target got ${got.length} of 3500 bytes`).to.equal(true);
          }
        });

        it('ends the target connection when the client disappears without a close frame', async () => {
          target.behave(() => { /* sink */ });
          const sock = target.nextSocket();
          const ws = await openWs(running.url());
          const s = await sock;
          const ended = readToEnd(s);
          ws.send(Buffer.from('last words'));
          await waitFor(() => s.bytesRead >= 10, () => `target got ${s.bytesRead} of 10 bytes`);
          ws.terminate();
          const got = await ended;
          expect(got.toString()).to.equal('last words');
        });

        describe('unreachable target', () => {
          let dead: RunningProxy;
          before(async () => {
            const nothingThere = await freePort();
            dead = await proxy.start([LISTEN, `127.0.0.1:${nothingThere}`]);
          });
          after(async () => { await dead?.stop(); });

          itDiverges(proxy.name, 'target-unreachable', 'answers HTTP 502 before upgrading when the target refuses', async (deviant) => {
            const { reply, ws } = await rawConnect(dead.port);
            if (deviant) {
              expect(reply.head?.status).to.equal(101);
              if (!ws) throw new Error('not upgraded');
              const { code, reason } = await ws.readUntilClose(5000);
              ws.destroy();
              expect(code).to.equal(1011);
              expect(reason).to.equal('Failed to connect to downstream server');
            } else {
              expect(reply.head?.status).to.equal(502);
              expect(ws).to.equal(null);
              expect(reply.head?.headers).to.not.have.property('sec-websocket-accept');
            }
          });
        });
      });
    });
  }
});
