/**
 * `tsockify token sign|verify|keygen`, in process (runTokenCommand) and through the built
 * command, and the server flags that go with signed tokens: --allow-target,
 * --allow-loopback-targets, --cookie-exchange.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { runTokenCommand } from '../../packages/cli/src/token-command.js';
import { parseArgs } from '../../packages/cli/src/args.js';
import { parseKeyFile, verifyToken } from '../../packages/auth-plugins/src/index.js';
import { startTcpTarget, type TcpTargetServer } from '../helpers/net.js';
import { startTsockify } from '../helpers/proc.js';
import { closeWs, openWs, startListening, tmpDir, track } from './fixtures.js';

function sink(): Writable & { text: () => string } {
  let text = '';
  const w = new Writable({ write(chunk, _enc, cb) { text += String(chunk); cb(); } }) as Writable & { text: () => string };
  w.text = () => text;
  return w;
}

async function run(args: string[], cwd: string, stdin?: string): Promise<{ code: number; out: string; err: string }> {
  const stdout = sink();
  const stderr = sink();
  let input: PassThrough | undefined;
  if (stdin !== undefined) {
    input = new PassThrough();
    input.end(stdin);
  }
  const code = await runTokenCommand(args, { stdout, stderr, cwd, ...(input ? { stdin: input } : {}) });
  return { code, out: stdout.text(), err: stderr.text() };
}

describe('tsockify token', () => {
  let dir: string;
  before(() => { dir = tmpDir('tsockify-token-cmd-'); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  describe('keygen', () => {
    it('prints one hs256 line that serves both sides', async () => {
      const r = await run(['keygen', '--kid', 'web-1'], dir);
      expect(r.code).to.equal(0);
      const { keys, errors } = parseKeyFile(r.out);
      expect(errors).to.deep.equal([]);
      expect([...keys.values()].map((k) => [k.kid, k.alg])).to.deep.equal([['web-1', 'HS256']]);
      fs.writeFileSync(path.join(dir, 'hs.keys'), r.out);
    });

    it('writes an Ed25519 signing file (0600) and a verifying .pub file with --out, refusing to overwrite', async () => {
      const r = await run(['keygen', '--alg', 'ed25519', '--kid', 'ed-1', '--out', 'ed.key'], dir);
      expect(r.code).to.equal(0);
      expect(fs.statSync(path.join(dir, 'ed.key')).mode & 0o777).to.equal(0o600);
      expect(fs.readFileSync(path.join(dir, 'ed.key'), 'utf8')).to.match(/^ed-1: ed25519-private:[A-Za-z0-9_-]{43}\n$/);
      expect(fs.readFileSync(path.join(dir, 'ed.key.pub'), 'utf8')).to.match(/^ed-1: ed25519:[A-Za-z0-9_-]{43}\n$/);
      await run(['keygen', '--out', 'ed.key'], dir).then(
        () => expect.fail('expected EEXIST'),
        (e: NodeJS.ErrnoException) => expect(e.code).to.equal('EEXIST'),
      );
    });

    it('refuses an unknown algorithm with exit 2', async () => {
      const r = await run(['keygen', '--alg', 'rsa'], dir);
      expect(r.code).to.equal(2);
      expect(r.err).to.match(/invalid --alg "rsa": expected hs256 or ed25519/);
    });
  });

  describe('sign', () => {
    it('prints the token and ready URLs for the built-in viewer and noVNC', async () => {
      const r = await run(['sign', '--keys', 'hs.keys', '--host', '10.0.0.5', '--port', '5901', '--sub', 'alice', '--iid', 'i-42', '--ttl', '90', '--url', 'https://gw.example.org/desk'], dir);
      expect(r.code).to.equal(0);
      const [token, blank, viewer, novnc] = r.out.trimEnd().split('\n');
      expect(blank).to.equal('');
      expect(viewer).to.equal(`built-in viewer (--viewer): https://gw.example.org/desk/?token=${token}`);
      expect(novnc).to.equal(`noVNC (--web):              https://gw.example.org/desk/vnc.html?autoconnect=1&path=websockify%3Ftoken%3D${token}`);
      const keys = parseKeyFile(fs.readFileSync(path.join(dir, 'hs.keys'), 'utf8')).keys;
      const v = verifyToken(token!, keys);
      expect(v.claims).to.include({ host: '10.0.0.5', port: 5901, sub: 'alice', iid: 'i-42' });
      expect(v.claims.exp - v.claims.iat).to.equal(90);
    });

    it('signs with the private Ed25519 line and refuses the public one', async () => {
      const ok = await run(['sign', '--keys', 'ed.key', '--host', '::1', '--port', '5901', '--print', 'token'], dir);
      expect(ok.code).to.equal(0);
      expect(ok.out).to.match(/^v1\.ed-1\.[^.]+\.[A-Za-z0-9_-]{86}\n$/);
      const no = await run(['sign', '--keys', 'ed.key.pub', '--host', '::1', '--port', '5901'], dir);
      expect(no.code).to.equal(2);
      expect(no.err).to.match(/holds no key that can sign/);
    });

    it('asks for --kid when several keys can sign, and names missing arguments', async () => {
      fs.writeFileSync(path.join(dir, 'two.keys'), fs.readFileSync(path.join(dir, 'hs.keys'), 'utf8') + fs.readFileSync(path.join(dir, 'ed.key'), 'utf8'));
      expect((await run(['sign', '--keys', 'two.keys', '--host', 'h', '--port', '1'], dir)).err).to.match(/several signing keys: choose one with --kid \(web-1, ed-1\)/);
      expect((await run(['sign', '--keys', 'two.keys', '--kid', 'ed-1', '--host', 'h', '--port', '1', '--print', 'token'], dir)).code).to.equal(0);
      expect((await run(['sign', '--keys', 'hs.keys', '--port', '1'], dir)).err).to.match(/--host HOST is required/);
      expect((await run(['sign', '--keys', 'hs.keys', '--host', 'h', '--port', '99999'], dir)).err).to.match(/invalid --port "99999"/);
      expect((await run(['sign', '--host', 'h', '--port', '1'], dir)).err).to.match(/--keys KEYS is required/);
      expect((await run(['sign', '--keys', 'nope', '--host', 'h', '--port', '1'], dir))).to.include({ code: 2 });
    });
  });

  describe('verify', () => {
    const sign = async (...extra: string[]): Promise<string> =>
      (await run(['sign', '--keys', 'hs.keys', '--host', '10.0.0.5', '--port', '5901', '--print', 'token', ...extra], dir)).out.trim();

    it('says valid, when it expires and what it opens, with the hash tsockify logs (exit 0)', async () => {
      const token = await sign('--ttl', '300');
      const r = await run(['verify', '--keys', 'hs.keys', token], dir);
      expect(r.code).to.equal(0);
      expect(r.out).to.match(/^token hash: [0-9a-f]{12} \(as tsockify logs it\)\nvalid: signed by key "web-1" \(HS256\); expires in 4m 5\ds/);
      expect(r.out).to.include('target: 10.0.0.5:5901');
    });

    it('explains an expired token by how long ago it expired (exit 1)', async () => {
      const token = await sign('--ttl', '60');
      const later = Math.floor(Date.now() / 1000) + 60 + 3600 + 120;
      const r = await run(['verify', '--keys', 'hs.keys', '--now', String(later), token], dir);
      expect(r.code).to.equal(1);
      expect(r.out).to.match(/refused: token expired: expired 1h 2m( \d+s)? ago/);
      expect(r.out).to.include('clients get: 401 token expired');
      expect(r.out).to.match(/unverified contents: key id "web-1", claims \{"host":"10\.0\.0\.5"/);
    });

    it('explains a bad signature, an unknown key id, a malformed token and a missing claim', async () => {
      const token = await sign();
      const cases: Array<[string, RegExp]> = [
        [`${token.slice(0, -3)}AAA`, /refused: token signature invalid: the HS256 signature does not match key "web-1"/],
        [token.replace('v1.web-1.', 'v1.web-9.'), /refused: token key unknown: key id "web-9" is not in the key ring \(known: web-1\)/],
        ['eyJ.eyJ.sig', /refused: malformed token: .*a JWT\?/],
      ];
      for (const [t, re] of cases) {
        const r = await run(['verify', '--keys', 'hs.keys', t], dir);
        expect(r.code).to.equal(1);
        expect(r.out).to.match(re);
      }
      const r = await run(['verify', '--keys', 'hs.keys', '--require', 'sub', token], dir);
      expect(r.out).to.include('refused: token has no sub claim: the required claim "sub" is missing');
    });

    it('reads the token from stdin with -, and exits 2 on usage errors', async () => {
      const token = await sign();
      expect((await run(['verify', '--keys', 'hs.keys', '-'], dir, `${token}\n`)).code).to.equal(0);
      // Regression: yargs turned a lone "-" positional into "" (yargs/yargs#1312), so the
      // command verified an empty token instead of reading stdin.
      expect((await run(['verify', '-', '--keys', 'hs.keys'], dir, `${token}\n`)).out).to.match(/\nvalid: /);
      expect((await run(['verify', '--keys', 'hs.keys'], dir)).code).to.equal(2);
      expect((await run(['verify', '--keys', 'hs.keys', '--require', 'host', token], dir)).code).to.equal(2);
      expect((await run(['verify', '--bogus', token], dir)).code).to.equal(2);
    });
  });

  describe('help', () => {
    it('prints the usage with --help (exit 0), and without a command (exit 2)', async () => {
      for (const args of [['--help'], ['sign', '--help'], ['help']]) {
        const r = await run(args, dir);
        expect(r.code, args.join(' ')).to.equal(0);
        expect(r.out).to.include('tsockify token sign').and.include('tsockify token verify').and.include('Exit codes');
      }
      expect((await run([], dir)).code).to.equal(2);
      const bad = await run(['mint'], dir);
      expect(bad.code).to.equal(2);
      expect(bad.err).to.match(/unknown token command "mint"/);
    });

    it('lists the three commands, and shows a command\'s own options with `COMMAND --help`', async () => {
      const r = await run(['--help'], dir);
      expect(r.code).to.equal(0);
      expect(r.err).to.equal('');
      expect(r.out).to.match(/^ {2}tsockify token sign +mint a token/m)
        .and.match(/^ {2}tsockify token verify <token> +check a token/m)
        .and.match(/^ {2}tsockify token keygen +print a new key line/m);
      const sign = await run(['sign', '-h'], dir);
      expect(sign.code).to.equal(0);
      expect(sign.out).to.include('--print').and.include('"all", "token", "viewer", "novnc"').and.match(/--keys .*\[required\]/);
    });
  });

  describe('usage errors', () => {
    const usageError = async (args: string[], message: RegExp): Promise<void> => {
      const r = await run(args, dir);
      expect(r.code, args.join(' ')).to.equal(2);
      expect(r.out, args.join(' ')).to.equal('');
      expect(r.err, args.join(' ')).to.match(/^tsockify token: .* \(see 'tsockify token --help'\)\n$/).and.match(message);
    };

    it('refuses an unknown option with exit 2', async () => {
      await usageError(['keygen', '--bogus'], /Unknown argument: bogus/);
      await usageError(['keygen', '--no-kid'], /Unknown arguments: no-kid/);
    });

    it('refuses a --print outside all|token|viewer|novnc with exit 2', async () => {
      await usageError(['sign', '--keys', 'hs.keys', '--host', 'h', '--port', '1', '--print', 'json'], /invalid --print "json": expected all, token, viewer or novnc/);
    });

    it('refuses --ttl together with --exp with exit 2', async () => {
      await usageError(['sign', '--keys', 'hs.keys', '--host', 'h', '--port', '1', '--ttl', '60', '--exp', '4102444800'], /ttl and exp are mutually exclusive/);
    });

    it('names each missing required option, a value-less option and a bad number', async () => {
      await usageError(['sign', '--port', '1'], /--keys KEYS is required.*--host HOST is required/);
      await usageError(['sign', '--keys', 'hs.keys', '--host', 'h', '--port', '1', '--kid'], /Not enough arguments following: kid/);
      await usageError(['verify', '--keys', 'hs.keys', '--now', '1.5', 'v1.x.y.z'], /invalid --now "1\.5": expected a whole number from 0 to/);
    });

    it('calls a surplus word after verify TOKEN an unknown argument, not an unknown command', async () => {
      await usageError(['verify', '--keys', 'hs.keys', 'v1.x.y.z', 'extra'], /Unknown argument: extra/);
    });
  });

  describe('through the built command', () => {
    let target: TcpTargetServer;
    before(async () => { target = await startTcpTarget(); });
    after(async () => { await target.close(); });

    it('dispatches `tsockify token`, and a signed token opens a session on a SignedToken server', async () => {
      const sign = track(startTsockify(['token', 'sign', '--keys', path.join(dir, 'hs.keys'), '--host', '127.0.0.1', '--port', String(target.port), '--print', 'token']));
      expect(await sign.exited).to.equal(0);
      const token = sign.stdout().trim();
      const t = await startListening(['--token-plugin', 'SignedToken', '--token-source', path.join(dir, 'hs.keys'), '--allow-target', `127.0.0.1/32:${target.port}`, '--allow-loopback-targets']);
      const ws = await openWs(t.url(`/websockify?token=${token}`));
      await closeWs(ws);
      await openWs(t.url('/websockify?token=v1.web-1.e30.AAAA')).then(() => expect.fail('expected 401'), (e: Error) => expect(e.message).to.equal('HTTP 401'));
      expect(await t.proc.stop()).to.equal(0);
    });

    it('refuses a target outside --allow-target with 403 (repeatable flag, loopback denied without --allow-loopback-targets)', async () => {
      const token = (await run(['sign', '--keys', 'hs.keys', '--host', '127.0.0.1', '--port', String(target.port), '--print', 'token'], dir)).out.trim();
      const t = await startListening(['--token-plugin', 'SignedToken', '--token-source', path.join(dir, 'hs.keys'), '--allow-target', '10.0.0.0/8', '--allow-target', `127.0.0.1:${target.port}`]);
      await openWs(t.url(`/websockify?token=${token}`)).then(() => expect.fail('expected 403'), (e: Error) => expect(e.message).to.equal('HTTP 403'));
      await t.proc.waitForOutput(/is a loopback address/);
      expect(t.proc.stderr()).to.not.include(token);
      await t.proc.stop();
    });

    it('--cookie-exchange answers the page with 303 and an HttpOnly cookie', async () => {
      const token = (await run(['sign', '--keys', 'hs.keys', '--host', '127.0.0.1', '--port', String(target.port), '--print', 'token'], dir)).out.trim();
      const t = await startListening(['--token-plugin', 'SignedToken', '--token-source', `${path.join(dir, 'hs.keys')}::once`, '--cookie-exchange', '--cookie-name', 'desk']);
      const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port: t.port, path: `/?token=${token}` }, resolve).on('error', reject);
      });
      res.resume();
      expect(res.statusCode).to.equal(303);
      expect(res.headers.location).to.equal('/');
      expect(res.headers['set-cookie']![0]).to.match(/^desk=[^;]+; HttpOnly; SameSite=Strict; Path=\/; Max-Age=\d+$/);
      await t.proc.stop();
    });

    it('reports flag misuse: --cookie-exchange without a token plugin (exit 2), a bad --allow-target (exit 1)', async () => {
      expect(() => parseArgs(['6080', 'h:1', '--cookie-exchange'])).to.throw(/You must use --token-plugin to use --cookie-exchange/);
      const cli = parseArgs(['6080', '--token-plugin', 'TokenFile', '--token-source', 'x', '--allow-target', 'a', '--allow-target', 'b', '--allow-loopback-targets', '--plugin-timeout', '2.5']);
      expect(cli.kind === 'run' && cli.options.targets).to.deep.equal({ allow: ['a', 'b'], allowLoopback: true, allowLinkLocal: false });
      expect(cli.kind === 'run' && cli.options.pluginTimeout).to.equal(2.5);
      const p = track(startTsockify(['127.0.0.1:0', '127.0.0.1:5901', '--allow-target', 'desk.example:5901']));
      expect(await p.exited).to.equal(1);
      expect(p.stderr()).to.match(/invalid allowTargets entry "desk\.example:5901": "desk\.example" is not an IP address/);
    });
  });
});
