import { expect } from 'chai';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LISTEN, proxies, type RunningProxy } from './proxies.js';
import { itDiverges } from './divergences.js';
import { OP, rawConnect, type HandshakeOptions, type RawReply, type RawWebSocket } from './raw.js';
import { programmableTarget, type ProgrammableTarget } from './fixtures.js';

/** A relayed round trip through an upgraded raw connection (the echo target answers). */
async function expectRelays(ws: RawWebSocket | null): Promise<void> {
  expect(ws, 'upgraded').to.not.equal(null);
  if (!ws) return;
  ws.send(OP.binary, Buffer.from('through the token'));
  const f = await ws.nextFrame(3000);
  ws.destroy();
  expect(f.opcode).to.equal(OP.binary);
  expect(f.payload.toString()).to.equal('through the token');
}

/** The refusal of a missing/unknown token: websockify's bare close, or tsockify's 4xx. */
function expectRefused(reply: RawReply, deviant: boolean, token?: string): void {
  if (deviant) {
    expect(reply.head, 'no HTTP response').to.equal(null);
    expect(reply.raw.length, 'no bytes at all').to.equal(0);
    expect(reply.ended).to.equal(true);
  } else {
    expect(reply.head, 'an HTTP response').to.not.equal(null);
    expect(reply.head?.status).to.be.within(400, 499);
    expect(reply.raw.length, 'a short answer').to.be.below(2048);
    if (token) expect(reply.raw.toString('latin1')).to.not.include(token);
  }
}

describe('compat', () => {
  for (const proxy of proxies) {
    describe(proxy.name, () => {
      let target: ProgrammableTarget;
      let dir: string;
      let tokenFile: string;

      before(async () => {
        target = await programmableTarget();
        dir = mkdtempSync(path.join(tmpdir(), 'compat-tokens-'));
        tokenFile = path.join(dir, 'tokens');
        const to = `127.0.0.1:${target.port}`;
        writeFileSync(tokenFile, [
          '# a comment line',
          `good: ${to}`,
          `a/b: ${to}`,
          // An empty token that maps to a target: reaching it would mean `?token=` was looked up.
          `: ${to}`,
          '',
        ].join('\n'));
      });
      after(async () => {
        await target?.close();
        if (dir) rmSync(dir, { recursive: true, force: true });
      });

      describe('token plugin', () => {
        let running: RunningProxy;
        before(async () => {
          running = await proxy.start(['--token-plugin', 'TokenFile', '--token-source', tokenFile, LISTEN]);
        });
        after(async () => { await running?.stop(); });

        const connect = (p: string, opts: HandshakeOptions = {}) => rawConnect(running.port, { path: p, ...opts });

        it('connects a known token to its target', async () => {
          const { reply, ws } = await connect('/?token=good');
          expect(reply.head?.status).to.equal(101);
          await expectRelays(ws);
        });

        it('finds the token among other query parameters on any path', async () => {
          const { ws } = await connect('/websockify?foo=1&token=good&bar=2');
          await expectRelays(ws);
        });

        it('percent-decodes the token', async () => {
          const { ws } = await connect('/?token=a%2Fb');
          await expectRelays(ws);
        });

        it('takes the first value when the token is repeated', async () => {
          const { ws } = await connect('/?token=good&token=nope');
          await expectRelays(ws);
        });

        itDiverges(proxy.name, 'token-rejected', 'ignores a later good value when the first token is unknown (4xx)', async (deviant) => {
          const { reply } = await connect('/?token=nope&token=good');
          expectRefused(reply, deviant);
        });

        itDiverges(proxy.name, 'token-rejected', 'refuses a missing token with a 4xx', async (deviant) => {
          const { reply } = await connect('/');
          expectRefused(reply, deviant);
        });

        itDiverges(proxy.name, 'token-rejected', 'refuses an unknown token with a 4xx', async (deviant) => {
          const { reply } = await connect('/?token=nope-unknown');
          expectRefused(reply, deviant, 'nope-unknown');
        });

        itDiverges(proxy.name, 'token-rejected', 'treats an empty token as absent (4xx, even though "" is in the file)', async (deviant) => {
          const { reply } = await connect('/?token=');
          expectRefused(reply, deviant);
        });

        itDiverges(proxy.name, 'token-logged', 'never writes an unknown token to its log', async (deviant) => {
          const secret = 'zz-secret-token-4711';
          const { reply } = await connect(`/?token=${secret}`);
          expectRefused(reply, deviant, secret);
          if (deviant) {
            await running.proc.waitForOutput(new RegExp(secret), 3000);
          } else {
            // Give the log line time to be written, then check it does not hold the token.
            await new Promise((r) => setTimeout(r, 300));
            expect(running.output()).to.not.include(secret);
          }
        });

        it('re-reads the token file on every lookup (TokenFile)', async () => {
          appendFileSync(tokenFile, `late: 127.0.0.1:${target.port}\n`);
          const { ws } = await connect('/?token=late');
          await expectRelays(ws);
        });
      });

      describe('--host-token', () => {
        let running: RunningProxy;
        before(async () => {
          running = await proxy.start(['--token-plugin', 'TokenFile', '--token-source', tokenFile, '--host-token', LISTEN]);
        });
        after(async () => { await running?.stop(); });

        it('takes the token from the Host header without its port', async () => {
          const { ws } = await rawConnect(running.port, { headers: { Host: `good:${running.port}` } });
          await expectRelays(ws);
        });

        it('takes a Host header without a port as the token', async () => {
          const { ws } = await rawConnect(running.port, { headers: { Host: 'good' } });
          await expectRelays(ws);
        });

        itDiverges(proxy.name, 'token-rejected', 'ignores the query token and refuses an unknown Host with a 4xx', async (deviant) => {
          const { reply } = await rawConnect(running.port, { path: '/?token=good', headers: { Host: `nope:${running.port}` } });
          expectRefused(reply, deviant);
        });
      });
    });
  }
});
