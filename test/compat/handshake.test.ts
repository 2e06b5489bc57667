import { expect } from 'chai';
import { LISTEN, proxies, type RunningProxy } from './proxies.js';
import { itDiverges } from './divergences.js';
import { acceptFor, rawConnect, rawRequest } from './raw.js';
import { programmableTarget, type ProgrammableTarget } from './fixtures.js';

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

      /** Handshake; the connection (if upgraded) is dropped right away. */
      async function handshake(opts: Parameters<typeof rawConnect>[1]) {
        const r = await rawConnect(running.port, opts);
        r.ws?.destroy();
        return r;
      }

      describe('handshake', () => {
        it('answers binary when offered', async () => {
          const { reply, key } = await handshake({ protocol: 'binary' });
          expect(reply.head?.status).to.equal(101);
          expect(reply.head?.headers['sec-websocket-protocol']).to.equal('binary');
          expect(reply.head?.headers['sec-websocket-accept']).to.equal(acceptFor(key));
        });

        it('answers binary when it is one of several offered', async () => {
          const { reply } = await handshake({ protocol: 'base64,binary' });
          expect(reply.head?.status).to.equal(101);
          expect(reply.head?.headers['sec-websocket-protocol']).to.equal('binary');
        });

        itDiverges(proxy.name, 'subprotocol-list-space', 'trims a space after the comma and answers binary', async (deviant) => {
          const { reply } = await handshake({ protocol: 'base64, binary' });
          if (deviant) {
            expect(reply.head?.status).to.equal(400);
          } else {
            expect(reply.head?.status).to.equal(101);
            expect(reply.head?.headers['sec-websocket-protocol']).to.equal('binary');
          }
        });

        it('sends no Sec-WebSocket-Protocol when none is offered', async () => {
          const { reply } = await handshake({});
          expect(reply.head?.status).to.equal(101);
          expect(reply.head?.headers).to.not.have.property('sec-websocket-protocol');
        });

        it('answers 400 when only other subprotocols are offered', async () => {
          const { reply } = await handshake({ protocol: 'base64' });
          expect(reply.head?.status).to.equal(400);
          expect(reply.head?.headers).to.not.have.property('sec-websocket-accept');
        });

        for (const path of ['/websockify', '/some/deep/path?x=1&y=2', '/?token=ignored-without-plugin']) {
          it(`accepts any path (${path})`, async () => {
            const { reply } = await handshake({ path });
            expect(reply.head?.status).to.equal(101);
          });
        }

        it('accepts Sec-WebSocket-Version 13 with the RFC 6455 accept key', async () => {
          const { reply, key } = await handshake({ headers: { 'Sec-WebSocket-Version': '13' } });
          expect(reply.head?.status).to.equal(101);
          expect(reply.head?.headers.upgrade?.toLowerCase()).to.equal('websocket');
          expect(reply.head?.headers.connection?.toLowerCase()).to.equal('upgrade');
          expect(reply.head?.headers['sec-websocket-accept']).to.equal(acceptFor(key));
        });

        it('refuses an unknown Sec-WebSocket-Version with a 4xx', async () => {
          const { reply } = await handshake({ headers: { 'Sec-WebSocket-Version': '99' } });
          expect(reply.head?.status).to.be.within(400, 499);
        });

        it('answers 400 when Sec-WebSocket-Key is missing', async () => {
          const { reply } = await handshake({ headers: { 'Sec-WebSocket-Key': null } });
          expect(reply.head?.status).to.equal(400);
        });
      });

      describe('plain HTTP without --web', () => {
        const plain = (method: string) => rawRequest(running.port,
          `${method} / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);

        for (const method of ['GET', 'HEAD']) {
          it(`answers ${method} with 405`, async () => {
            const reply = await plain(method);
            reply.socket.destroy();
            expect(reply.head?.status).to.equal(405);
          });
        }

        for (const method of ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
          itDiverges(proxy.name, 'http-method-405', `answers ${method} with 405`, async (deviant) => {
            const reply = await plain(method);
            reply.socket.destroy();
            expect(reply.head?.status).to.equal(deviant ? 501 : 405);
          });
        }
      });
    });
  }
});
