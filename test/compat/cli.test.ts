import { expect } from 'chai';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LISTEN, proxies, type RunningProxy } from './proxies.js';
import { openWs, programmableTarget, waitClose, waitFor, type ProgrammableTarget } from './fixtures.js';
import type { WebSocket } from 'ws';

const LEGEND = [
  'Traffic Legend:',
  '    }  - Client receive',
  '    }. - Client receive partial',
  '    {  - Target receive',
  '',
  '    >  - Target send',
  '    >. - Target send partial',
  '    <  - Client send',
  '    <. - Client send partial',
].join('\n');

/**
 * How websockify writes bytes into a record file: latin-1 text through Python's
 * `unicode_escape`, then `'` escaped.
 */
function recordEscape(bytes: Buffer): string {
  let out = '';
  for (const b of bytes) {
    if (b === 0x5c) out += '\\\\';
    else if (b === 0x09) out += '\\t';
    else if (b === 0x0a) out += '\\n';
    else if (b === 0x0d) out += '\\r';
    else if (b === 0x27) out += "\\'";
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else out += `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** One echo round trip, then a normal close from the client. */
async function roundTrip(url: string, payload: Buffer): Promise<Buffer> {
  const ws: WebSocket = await openWs(url);
  const echoed = await new Promise<Buffer>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no echo within 3 s')), 3000);
    ws.once('message', (d: Buffer) => { clearTimeout(timer); resolve(d); });
    ws.send(payload);
  });
  const closed = waitClose(ws);
  ws.close(1000);
  await closed;
  return echoed;
}

describe('compat', () => {
  for (const proxy of proxies) {
    describe(proxy.name, () => {
      let target: ProgrammableTarget;
      let dir: string;
      before(async () => {
        target = await programmableTarget();
        dir = mkdtempSync(path.join(tmpdir(), `compat-cli-${proxy.name}-`));
      });
      after(async () => {
        await target?.close();
        if (dir) rmSync(dir, { recursive: true, force: true });
      });

      describe('--record', () => {
        let running: RunningProxy;
        const rec = () => path.join(dir, 'rec');
        before(async () => {
          running = await proxy.start(['--record', rec(), LISTEN, `127.0.0.1:${target.port}`]);
        });
        after(async () => { await running?.stop(); });

        it('writes the first session to FILE.1 in noVNC playback format', async () => {
          const payload = Buffer.from([0x68, 0x69, 0x27, 0x00, 0xff, 0x5c, 0x0a, 0x09, 0x7f, 0xe9, 0x22, 0x20, 0x7e]);
          const echoed = await roundTrip(running.url(), payload);
          expect(echoed.equals(payload)).to.equal(true);
          const file = `${rec()}.1`;
          await waitFor(() => existsSync(file) && readFileSync(file, 'latin1').includes("'EOF'];"),
            () => `${file} complete; dir has ${readdirSync(dir).join(', ')}`, 5000);
          const lines = readFileSync(file, 'latin1').trimEnd().split('\n');
          expect(lines[0]).to.equal('var VNC_frame_data = [');
          expect(lines[lines.length - 1]).to.equal("'EOF'];");
          const body = lines.slice(1, -1);
          for (const line of body) expect(line).to.match(/^'([{}])\d+\1.*',$/);
          const esc = recordEscape(payload);
          const fromClient = body.filter((l) => l.startsWith("'}"));
          const fromTarget = body.filter((l) => l.startsWith("'{"));
          expect(fromClient).to.have.length(1);
          expect(fromTarget).to.have.length(1);
          expect(fromClient[0]).to.match(new RegExp(`^'\\}\\d+\\}${esc.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')}',$`));
          expect(fromTarget[0]).to.match(new RegExp(`^'\\{\\d+\\{${esc.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')}',$`));
          const ms = (l: string) => Number(/^'.(\d+)/.exec(l)?.[1]);
          expect(ms(fromTarget[0] ?? '')).to.be.at.least(ms(fromClient[0] ?? ''));
          expect(readdirSync(dir).filter((f) => f.startsWith('rec.'))).to.deep.equal(['rec.1']);
        });
      });

      describe('--traffic', () => {
        let running: RunningProxy;
        before(async () => {
          running = await proxy.start(['--traffic', LISTEN, `127.0.0.1:${target.port}`]);
        });
        after(async () => { await running?.stop(); });

        it('prints the traffic legend and per-frame characters on stdout', async () => {
          await roundTrip(running.url(), Buffer.from('traffic'));
          await waitFor(() => running.proc.stdout().includes(LEGEND), () => `legend on stdout; got ${JSON.stringify(running.proc.stdout())}`, 3000);
          const tail = () => running.proc.stdout().slice(running.proc.stdout().indexOf(LEGEND) + LEGEND.length);
          await waitFor(() => ['}', '>', '{', '<'].every((c) => tail().includes(c)),
            () => `traffic characters } > { < after the legend; got ${JSON.stringify(tail())}`, 3000);
        });
      });

      describe('--run-once', () => {
        it('exits 0 after one WebSocket session', async () => {
          const running = await proxy.start(['--run-once', LISTEN, `127.0.0.1:${target.port}`]);
          try {
            await roundTrip(running.url(), Buffer.from('once'));
            const code = await Promise.race([
              running.proc.exited,
              new Promise<string>((resolve) => setTimeout(() => resolve('still running after 5 s'), 5000)),
            ]);
            expect(code).to.equal(0);
          } finally {
            await running.stop();
          }
        });
      });

      describe('command line', () => {
        it('accepts --opt=value, unique prefixes of long options and interleaved positionals', async () => {
          const running = await proxy.start(['--verb', LISTEN, '--heartb=5', `127.0.0.1:${target.port}`]);
          try {
            const echoed = await roundTrip(running.url(), Buffer.from('parsed'));
            expect(echoed.toString()).to.equal('parsed');
          } finally {
            await running.stop();
          }
        });

        const startupErrors: Array<[string, string[], RegExp]> = [
          ['a target without a colon', [LISTEN, 'nocolon'], /Error parsing target/],
          ['no target at all', [LISTEN], /Too few arguments|Error parsing target/],
          ['an extra positional argument', [LISTEN, '127.0.0.1:5901', 'extra'], /Too many arguments/],
          ['--token-source without --token-plugin', ['--token-source', '/nonexistent/tokens', LISTEN], /--token-plugin/],
          ['--host-token without --token-plugin', ['--host-token', LISTEN, '127.0.0.1:5901'], /--token-plugin/],
          ['--auth-source without --auth-plugin', ['--auth-source', 'x', LISTEN, '127.0.0.1:5901'], /--auth-plugin/],
          ['--web-auth without --auth-plugin', ['--web-auth', LISTEN, '127.0.0.1:5901'], /--auth-plugin/],
          ['--legacy-syslog without --syslog', ['--legacy-syslog', LISTEN, '127.0.0.1:5901'], /--syslog/],
        ];
        for (const [what, args, phrase] of startupErrors) {
          it(`exits non-zero naming the problem for ${what}`, async () => {
            const r = await proxy.run(args, 5000);
            expect(r.timedOut, `it kept running; output:\n${r.output}`).to.equal(false);
            expect(r.code, r.output).to.be.a('number').and.not.equal(0);
            expect(r.output).to.match(phrase);
          });
        }
      });
    });
  }
});
