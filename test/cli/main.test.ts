/**
 * The built `tsockify` command, run as a process (build first: npx tsc -b packages/cli).
 * What websockify does the same way is in test/compat; this file covers tsockify's own
 * command-line behaviour: startup lines and errors, logs, lifecycle, sockets, wrap, daemon.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { FLAGS, USAGE_LINES } from '../../packages/cli/src/flags.js';
import { startTcpTarget, type TcpTargetServer } from '../helpers/net.js';
import { startProcess, startTsockify, tsockifyBin } from '../helpers/proc.js';
import { makeCerts, type CertSet } from '../helpers/certs.js';
import {
  closeWs, echoRoundTrip, freePort, jsonLines, listeningFd, openWs, startListening, tmpDir, track, until, waitClose,
} from './fixtures.js';

const pkgVersion = (JSON.parse(fs.readFileSync(path.join(path.dirname(tsockifyBin), '../package.json'), 'utf8')) as { version: string }).version;

describe('tsockify command', () => {
  let target: TcpTargetServer;
  before(async () => { target = await startTcpTarget(); });
  after(async () => { await target?.close(); });

  describe('startup', () => {
    it('prints the tsockify startup line and websockify-like settings lines', async () => {
      const t = await startListening([`127.0.0.1:${target.port}`]);
      const out = t.proc.stderr();
      expect(out).to.include(`tsockify: listening on 127.0.0.1:${t.port} proxying to 127.0.0.1:${target.port}`);
      expect(out).to.include('WebSocket server settings:');
      expect(out).to.include(`  - Listen on 127.0.0.1:${t.port}`);
      expect(out).to.include('  - No SSL/TLS support (no cert file)');
      expect(out).to.include(`  - proxying from 127.0.0.1:${t.port} to 127.0.0.1:${target.port}`);
      expect(await t.proc.stop()).to.equal(0);
    });

    it('--help lists the usage lines and every flag in the table, and exits 0', async () => {
      const p = track(startTsockify(['--help']));
      expect(await p.exited).to.equal(0);
      const help = p.stdout();
      for (const u of USAGE_LINES) expect(help).to.include(`tsockify ${u}`);
      for (const f of FLAGS) {
        expect(help, f.name).to.match(new RegExp(`--${f.name}(=|\\s|,|$)`, 'm'));
        for (const s of f.short ?? []) expect(help, `-${s}`).to.include(`-${s}, --${f.name}`);
      }
    });

    it('--version prints the package version', async () => {
      const p = track(startTsockify(['--version']));
      expect(await p.exited).to.equal(0);
      expect(p.stdout()).to.equal(`tsockify ${pkgVersion}\n`);
    });

    it('prints a usage error as one "tsockify: what (how)" line on stderr and exits 2', async () => {
      const p = track(startTsockify(['6080', 'localhost']));
      expect(await p.exited).to.equal(2);
      expect(p.stdout()).to.equal('');
      expect(p.stderr()).to.match(/^tsockify: Error parsing target \(got "localhost"; expected target_addr:target_port.*\)\n$/);
    });

    it('names an unknown option and points at --help', async () => {
      const p = track(startTsockify(['--bogus', '6080', 'h:1']));
      expect(await p.exited).to.equal(2);
      expect(p.stderr()).to.equal("tsockify: no such option: --bogus (run 'tsockify --help' for the list of options)\n");
    });

    const startupErrors: Array<[string, (dir: string) => string[], RegExp]> = [
      ['a --cert file that holds no certificate', (d) => { fs.writeFileSync(path.join(d, 'bad.pem'), 'nope'); return ['--cert', path.join(d, 'bad.pem')]; },
        /^tsockify: cannot use --cert ".*bad\.pem": .* \(the file must hold the certificate and its private key/],
      ['a --key that cannot be read', () => ['--cert', certs.serverCert, '--key', '/nonexistent/key.pem'],
        /^tsockify: cannot read --key file "\/nonexistent\/key\.pem": no such file \(check the path/],
      ['a --key that does not fit the certificate', () => ['--cert', certs.serverCert, '--key', certs.selfKey],
        /^tsockify: cannot use --cert ".*server\.pem" \/ --key ".*self\.key": .*\(the key must be the private key of the certificate/],
      ['a missing --web folder', (d) => ['--web', path.join(d, 'nope')], /^tsockify: --web directory ".*nope" not found \(give the folder to serve/],
      ['an unknown --token-plugin', () => ['--token-plugin', 'NoSuchPlugin'], /^tsockify: cannot start --token-plugin NoSuchPlugin: unknown --token-plugin "NoSuchPlugin"/],
      ['a --log-file in a missing folder', () => ['--log-file', '/nonexistent/dir/t.log'], /^tsockify: cannot open --log-file "\/nonexistent\/dir\/t\.log": ENOENT/],
      ['a --target-ca that is not PEM', (d) => { fs.writeFileSync(path.join(d, 'ca.txt'), 'x'); return ['--ssl-target', '--target-ca', path.join(d, 'ca.txt')]; },
        /^tsockify: --target-ca file ".*ca\.txt" holds no PEM certificate/],
    ];
    let certs: CertSet;
    let dir: string;
    before(() => { certs = makeCerts(); dir = tmpDir('errors'); });
    after(() => { certs?.cleanup(); fs.rmSync(dir, { recursive: true, force: true }); });
    for (const [what, argsOf, re] of startupErrors) {
      it(`exits 1 naming the file or value for ${what}`, async () => {
        const args = argsOf(dir);
        const needsTarget = !args.includes('--token-plugin');
        const p = track(startTsockify([...args, '127.0.0.1:0', ...(needsTarget ? ['127.0.0.1:5901'] : [])]));
        expect(await p.exited).to.equal(1);
        const lastLine = p.stderr().trimEnd().split('\n').pop()!;
        expect(lastLine).to.match(re);
      });
    }

    it('exits 1 with "cannot listen" when the port is taken', async () => {
      const first = await startListening([`127.0.0.1:${target.port}`]);
      const p = track(startTsockify([`127.0.0.1:${first.port}`, `127.0.0.1:${target.port}`]));
      expect(await p.exited).to.equal(1);
      expect(p.stderr()).to.match(new RegExp(`tsockify: cannot listen on 127\\.0\\.0\\.1:${first.port}: address in use \\(stop the other process or pick another port\\)\\n$`));
      await first.proc.stop();
    });

    it('serves wss:// and ws:// on one port when the --cert file exists', async () => {
      const c = makeCerts();
      try {
        const t = await startListening(['--cert', c.serverCert, '--key', c.serverKey, `127.0.0.1:${target.port}`]);
        expect(t.proc.stderr()).to.include('  - SSL/TLS support');
        const wss = await openWs(`wss://localhost:${t.port}/`, { ca: fs.readFileSync(c.caCert) });
        expect(await echoRoundTrip(wss, 'over tls')).to.equal('over tls');
        await closeWs(wss);
        const ws = await openWs(t.url());
        expect(await echoRoundTrip(ws, 'plain')).to.equal('plain');
        await closeWs(ws);
        await t.proc.stop();
      } finally {
        c.cleanup();
      }
    });

    it('warns, and runs without TLS like websockify, when a given --cert file is missing', async () => {
      const t = await startListening(['--cert', '/nonexistent/cert.pem', `127.0.0.1:${target.port}`]);
      expect(t.proc.stderr()).to.include('TLS is off: --cert file \\"/nonexistent/cert.pem\\" not found');
      await t.proc.stop();
    });

    it('prints the traffic legend for each session with --traffic, as websockify does', async () => {
      const t = await startListening(['--traffic', `127.0.0.1:${target.port}`]);
      await new Promise((r) => setTimeout(r, 200));
      expect(t.proc.stdout()).to.not.include('Traffic Legend');
      const ws = await openWs(`ws://127.0.0.1:${t.port}/`);
      expect(await echoRoundTrip(ws, 'hi')).to.equal('hi');
      await closeWs(ws);
      // stdout and stderr are separate pipes: the legend may arrive after the log lines.
      await until(() => t.proc.stdout().includes('<. - Client send partial'), () => 'the legend on stdout');
      expect(t.proc.stdout()).to.match(/^\nTraffic Legend:\n {4}} {2}- Client receive\n/);
      await t.proc.stop();
    });
  });

  describe('limit flags', () => {
    it('--max-connections-per-client refuses the excess session with 429 and keeps the first one relaying', async () => {
      const t = await startListening(['--max-connections-per-client', '1', `127.0.0.1:${target.port}`]);
      const first = await openWs(t.url());
      try {
        await openWs(t.url());
        expect.fail('the second session from one address should be refused');
      } catch (err) {
        expect(String(err)).to.match(/429/);
      }
      expect(await echoRoundTrip(first, 'still here')).to.equal('still here');
      await closeWs(first);
      await t.proc.stop();
    });

    it('--session-idle-timeout closes a silent session with 1000 "Idle timeout"', async () => {
      const t = await startListening(['--session-idle-timeout', '1', `127.0.0.1:${target.port}`]);
      const ws = await openWs(t.url());
      expect(await waitClose(ws)).to.deep.equal({ code: 1000, reason: 'Idle timeout' });
      await t.proc.stop();
    });
  });

  describe('web and target TLS options', () => {
    it('--viewer beside --web leaves / to the folder and serves the viewer at /viewer/', async () => {
      const t = await startListening(['--web', '/usr/share/novnc', '--viewer', `127.0.0.1:${target.port}`]);
      const base = `http://127.0.0.1:${t.port}`;
      const folder = await fetch(`${base}/vnc.html`);
      expect(folder.status).to.equal(200);
      expect(await folder.text()).to.include('noVNC');
      const viewer = await fetch(`${base}/viewer/`);
      expect(viewer.status).to.equal(200);
      expect(viewer.headers.get('content-type')).to.match(/^text\/html/);
      const rfb = await fetch(`${base}/viewer/novnc/core/rfb.js`);
      expect(rfb.status).to.equal(200);
      expect(rfb.headers.get('content-type')).to.match(/^text\/javascript/);
      await t.proc.stop();
    });

    it('--viewer serves the built-in viewer page and noVNC at /', async () => {
      const t = await startListening(['--viewer', `127.0.0.1:${target.port}`]);
      const page = await fetch(`http://127.0.0.1:${t.port}/`);
      expect(page.status).to.equal(200);
      expect(page.headers.get('content-type')).to.match(/^text\/html/);
      const rfb = await fetch(`http://127.0.0.1:${t.port}/novnc/core/rfb.js`);
      expect(rfb.status).to.equal(200);
      const ws = await openWs(t.url());
      expect(await echoRoundTrip(ws, 'viewer port')).to.equal('viewer port');
      await closeWs(ws);
      await t.proc.stop();
    });

    it('--web-index serves the named file for / of the --web folder', async () => {
      const dir = tmpDir('web');
      fs.writeFileSync(path.join(dir, 'vnc.html'), '<title>vnc page</title>');
      const t = await startListening(['--web', dir, '--web-index', 'vnc.html', `127.0.0.1:${target.port}`]);
      expect(t.proc.stderr()).to.include(`  - Web server. Web root: ${dir}`);
      const res = await fetch(`http://127.0.0.1:${t.port}/`);
      expect(await res.text()).to.include('vnc page');
      await t.proc.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('--ssl-target --target-fingerprint reaches a VNC server with a self-signed certificate', async () => {
      const c = makeCerts();
      const tlsMod = await import('node:tls');
      const { X509Certificate } = await import('node:crypto');
      const server = tlsMod.createServer({ cert: fs.readFileSync(c.selfCert), key: fs.readFileSync(c.selfKey) }, (s) => s.pipe(s));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
      const port = (server.address() as { port: number }).port;
      try {
        const fp = new X509Certificate(fs.readFileSync(c.selfCert)).fingerprint256.replace(/:/g, '').toLowerCase();
        const t = await startListening(['--ssl-target', '--target-fingerprint', fp, `127.0.0.1:${port}`]);
        expect(t.proc.stderr()).to.include('(using SSL)');
        const ws = await openWs(t.url());
        expect(await echoRoundTrip(ws, 'pinned')).to.equal('pinned');
        await closeWs(ws);
        await t.proc.stop();
        const wrong = await startListening(['--ssl-target', '--target-fingerprint', 'ab'.repeat(32), `127.0.0.1:${port}`]);
        let refused = '';
        try { await openWs(wrong.url()); } catch (err) { refused = (err as Error).message; }
        expect(refused).to.match(/^HTTP 5\d\d$/);
        await wrong.proc.stop();
      } finally {
        server.close();
        c.cleanup();
      }
    });

    it('--ssl-target --target-ca trusts a private CA for the VNC server', async () => {
      const c = makeCerts();
      const tlsMod = await import('node:tls');
      const server = tlsMod.createServer({ cert: fs.readFileSync(c.serverCert), key: fs.readFileSync(c.serverKey) }, (s) => s.pipe(s));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
      const port = (server.address() as { port: number }).port;
      try {
        const t = await startListening(['--ssl-target', '--target-ca', c.caCert, `127.0.0.1:${port}`]);
        const ws = await openWs(t.url());
        expect(await echoRoundTrip(ws, 'private ca')).to.equal('private ca');
        await closeWs(ws);
        await t.proc.stop();
        // Without --target-ca the system CAs do not know this CA: refused before the upgrade.
        const plain = await startListening(['--ssl-target', `127.0.0.1:${port}`]);
        let refused = '';
        try { await openWs(plain.url()); } catch (err) { refused = (err as Error).message; }
        expect(refused).to.match(/^HTTP 5\d\d$/);
        await plain.proc.stop();
      } finally {
        server.close();
        c.cleanup();
      }
    });
  });

  describe('logs', () => {
    it('writes one JSON line per session open and close with client, target, bytes and duration', async () => {
      const t = await startListening([`127.0.0.1:${target.port}`]);
      const ws = await openWs(t.url());
      expect(await echoRoundTrip(ws, 'twelve bytes')).to.equal('twelve bytes');
      await closeWs(ws, 4001);
      await until(() => /session 1 closed/.test(t.proc.stderr()), () => 'the close line');
      const lines = jsonLines(t.proc.stderr());
      const open = lines.find((l) => /session 1 opened/.test(String(l.msg)))!;
      const close = lines.find((l) => /session 1 closed/.test(String(l.msg)))!;
      expect(open).to.include({ session: 1, target: `127.0.0.1:${target.port}`, path: '/websockify' });
      expect(String(open.client)).to.match(/^127\.0\.0\.1:\d+$/);
      expect(close).to.include({ session: 1, code: 4001, bytesToTarget: 12, bytesToClient: 12, client: open.client });
      expect(close.durationMs).to.be.a('number');
      expect(String(close.msg)).to.match(/12 bytes to target, 12 bytes to client, \d+\.\d s$/);
      await t.proc.stop();
    });

    it('never logs a token, accepted or refused, even with -v', async () => {
      const dir = tmpDir('tokens');
      const secret = 'S3CRET-token-value-7';
      const wrong = 'WR0NG-token-value-9';
      fs.writeFileSync(path.join(dir, 'tokens'), `${secret}: 127.0.0.1:${target.port}\n`);
      const t = await startListening(['-v', '--token-plugin', 'TokenFile', '--token-source', path.join(dir, 'tokens')]);
      const ws = await openWs(t.url(`/websockify?token=${secret}`));
      expect(await echoRoundTrip(ws, 'hi')).to.equal('hi');
      await closeWs(ws);
      try { await openWs(t.url(`/websockify?token=${wrong}`)); } catch { /* refused, as intended */ }
      await until(() => /session 1 closed/.test(t.proc.stderr()) && /handshake refused/.test(t.proc.stderr()), () => 'close and refusal lines');
      await t.proc.stop();
      const all = t.proc.stdout() + t.proc.stderr();
      expect(all).to.not.include(secret);
      expect(all).to.not.include(wrong);
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('writes human-readable lines with --log-format pretty', async () => {
      const t = await startListening(['--log-format', 'pretty', `127.0.0.1:${target.port}`]);
      const line = t.proc.stderr().split('\n').find((l) => l.includes('tsockify: listening on'))!;
      expect(line).to.match(/^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] INFO: tsockify: listening on/);
      await t.proc.stop();
    });

    it('appends to --log-file and re-opens it on SIGHUP (logrotate)', async () => {
      const dir = tmpDir('logfile');
      const log = path.join(dir, 't.log');
      fs.writeFileSync(log, 'existing line\n');
      const t = await startListening(['--log-file', log, `127.0.0.1:${target.port}`]);
      expect(fs.readFileSync(log, 'utf8')).to.match(/^existing line\n\{.*"msg":"WebSocket server settings:"/);
      fs.renameSync(log, `${log}.1`);
      t.proc.child.kill('SIGHUP');
      await until(() => fs.existsSync(log) && fs.readFileSync(log, 'utf8').includes('log file re-opened'), () => 'a new log file');
      const ws = await openWs(t.url());
      await closeWs(ws);
      await until(() => fs.readFileSync(log, 'utf8').includes('session 1 closed'), () => 'the session in the new file');
      expect(fs.readFileSync(`${log}.1`, 'utf8')).to.not.include('session 1');
      expect(await t.proc.stop()).to.equal(0);
      fs.rmSync(dir, { recursive: true, force: true });
    });
  });

  describe('lifecycle', () => {
    it('closes live sessions with 1001 and exits 0 on SIGTERM', async () => {
      const t = await startListening([`127.0.0.1:${target.port}`]);
      const ws = await openWs(t.url());
      const closed = waitClose(ws);
      t.proc.child.kill('SIGTERM');
      expect((await closed).code).to.equal(1001);
      expect(await t.proc.exited).to.equal(0);
    });

    it('exits 0 on SIGINT', async () => {
      const t = await startListening([`127.0.0.1:${target.port}`]);
      t.proc.child.kill('SIGINT');
      expect(await t.proc.exited).to.equal(0);
    });

    it('--timeout exits 0 after N seconds without sessions', async () => {
      const started = Date.now();
      const t = await startListening(['--timeout', '1', `127.0.0.1:${target.port}`]);
      expect(await t.proc.exited).to.equal(0);
      expect(Date.now() - started).to.be.within(900, 6000);
      expect(t.proc.stderr()).to.include('listener exit due to --timeout 1');
    });

    it('--timeout stops accepting but lets a live session finish, then exits', async () => {
      const t = await startListening(['--timeout', '1', `127.0.0.1:${target.port}`]);
      const ws = await openWs(t.url());
      await until(() => t.proc.stderr().includes('listener exit due to --timeout 1'), () => 'the timeout line', 4000);
      expect(await echoRoundTrip(ws, 'still here')).to.equal('still here');
      let refused = false;
      try { await openWs(t.url()); } catch { refused = true; }
      expect(refused, 'a new connection after --timeout').to.equal(true);
      await closeWs(ws);
      expect(await t.proc.exited).to.equal(0);
    });

    it('--idle-timeout exits after N seconds with no live session, not while one is live', async () => {
      const t = await startListening(['--idle-timeout', '1', `127.0.0.1:${target.port}`]);
      const ws = await openWs(t.url());
      await new Promise((r) => setTimeout(r, 1500));
      expect(t.proc.child.exitCode, 'still running with a live session').to.equal(null);
      await closeWs(ws);
      expect(await t.proc.exited).to.equal(0);
      expect(t.proc.stderr()).to.include('listener exit due to --idle-timeout 1');
    });
  });

  describe('listening sockets', () => {
    it('--inetd serves on the listening socket passed as fd 0', async () => {
      const l = await listeningFd();
      const proc = track(startTsockify(['--inetd', `127.0.0.1:${target.port}`], { stdio: [l.fd, 'pipe', 'pipe'] }));
      l.server.close();
      await proc.waitForOutput(/tsockify: listening on/);
      expect(proc.stderr()).to.include('  - Listen for inetd connections');
      const ws = await openWs(`ws://127.0.0.1:${l.port}/`);
      expect(await echoRoundTrip(ws, 'inetd')).to.equal('inetd');
      await closeWs(ws);
      expect(await proc.stop()).to.equal(0);
    });

    it('uses the systemd socket (LISTEN_FDS, fd 3) without a flag, ignoring the source port', async () => {
      const l = await listeningFd();
      // exec keeps the shell's PID, so LISTEN_PID=$$ names the tsockify process, as systemd does.
      const proc = track(startProcess('/bin/sh', ['-c', 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"', 'sh', process.execPath, tsockifyBin, '6080', `127.0.0.1:${target.port}`], {
        stdio: ['ignore', 'pipe', 'pipe', l.fd],
      }));
      l.server.close();
      await proc.waitForOutput(/tsockify: listening on/);
      expect(proc.stderr()).to.include('ignoring 6080');
      const ws = await openWs(`ws://127.0.0.1:${l.port}/`);
      expect(await echoRoundTrip(ws, 'activated')).to.equal('activated');
      await closeWs(ws);
      expect(await proc.stop()).to.equal(0);
    });

    it('--unix-listen serves on a unix socket with --unix-listen-mode', async () => {
      const dir = tmpDir('unix');
      const sock = path.join(dir, 't.sock');
      const proc = track(startTsockify(['--unix-listen', sock, '--unix-listen-mode', '640', `127.0.0.1:${target.port}`]));
      await proc.waitForOutput(/tsockify: listening on/);
      expect(fs.statSync(sock).mode & 0o777).to.equal(0o640);
      const { WebSocket } = await import('ws');
      const ws = new WebSocket(`ws+unix://${sock}:/websockify`);
      await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
      expect(await echoRoundTrip(ws, 'unix')).to.equal('unix');
      await closeWs(ws);
      await proc.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    });
  });

  describe('wrap mode', () => {
    const echoServer = `require('net').createServer((s) => s.pipe(s)).listen(Number(process.argv[1] || process.env.TSOCKIFY_TARGET_PORT), '127.0.0.1', () => console.log('wrapped echo ' + 'up'))`;

    it('tells the wrapped command its port through $TSOCKIFY_TARGET_PORT and proxies to it', async () => {
      const t = await startListening(['--', process.execPath, '-e', echoServer], { env: { ...process.env, TSOCKIFY_REBIND_SO: '' } });
      await t.proc.waitForOutput(/wrapped echo up/);
      expect(t.proc.stderr()).to.match(/wrapped command must listen on 127\.0\.0\.1:\d+ \(\$TSOCKIFY_TARGET_PORT\)/);
      const ws = await openWs(t.url());
      expect(await echoRoundTrip(ws, 'wrapped')).to.equal('wrapped');
      await closeWs(ws);
      expect(await t.proc.stop()).to.equal(0);
    });

    it("moves the wrapped command's bind on the listen port with websockify's rebind.so", async function () {
      if (!fs.existsSync('/usr/lib/websockify/rebind.so')) this.skip();
      const port = await freePort();
      const proc = track(startTsockify([`127.0.0.1:${port}`, '--', process.execPath, '-e', echoServer, String(port)]));
      await proc.waitForOutput(/wrapped echo up/);
      expect(proc.stderr()).to.include(`its bind on port ${port} is moved to`);
      const ws = await openWs(`ws://127.0.0.1:${port}/`);
      expect(await echoRoundTrip(ws, 'rebound')).to.equal('rebound');
      await closeWs(ws);
      expect(await proc.stop()).to.equal(0);
    });

    it('proxies to --wrap-target when given', async () => {
      const wrapPort = await freePort();
      const t = await startListening(['--wrap-target', `127.0.0.1:${wrapPort}`, '--', process.execPath, '-e', echoServer, String(wrapPort)]);
      await t.proc.waitForOutput(/wrapped echo up/);
      const ws = await openWs(t.url());
      expect(await echoRoundTrip(ws, 'explicit')).to.equal('explicit');
      await closeWs(ws);
      await t.proc.stop();
    });

    it('exits with the wrapped command\'s status in --wrap-mode exit (the default)', async () => {
      const port = await freePort();
      const proc = track(startTsockify([`127.0.0.1:${port}`, '--', '/bin/sh', '-c', 'sleep 0.3; exit 3']));
      expect(await proc.exited).to.equal(3);
      expect(proc.stderr()).to.include('Wrapped command exited (or daemon). Returned 3');
    });

    it('keeps serving when the command exits in --wrap-mode ignore', async () => {
      const t = await startListening(['--wrap-mode', 'ignore', '--wrap-target', `127.0.0.1:${target.port}`, '--', '/bin/sh', '-c', 'exit 4']);
      await t.proc.waitForOutput(/Returned 4/);
      await new Promise((r) => setTimeout(r, 300));
      expect(t.proc.child.exitCode).to.equal(null);
      const ws = await openWs(t.url());
      expect(await echoRoundTrip(ws, 'after exit')).to.equal('after exit');
      await closeWs(ws);
      expect(await t.proc.stop()).to.equal(0);
    });

    it('restarts the command in --wrap-mode respawn and holds off when it restarts too fast', async () => {
      const dir = tmpDir('respawn');
      const count = path.join(dir, 'starts');
      const t = await startListening(['--wrap-mode', 'respawn', '--', '/bin/sh', '-c', `echo x >> ${count}`]);
      await t.proc.waitForOutput(/Command respawning too fast/);
      await new Promise((r) => setTimeout(r, 500));
      expect(fs.readFileSync(count, 'utf8').split('\n').filter(Boolean)).to.have.length(3);
      expect(await t.proc.stop()).to.equal(0);
      fs.rmSync(dir, { recursive: true, force: true });
    });
  });

  describe('-D/--daemon', () => {
    it('returns 0 once the detached copy is listening; the copy serves and stops on SIGTERM', async () => {
      const dir = tmpDir('daemon');
      const log = path.join(dir, 'd.log');
      const port = await freePort();
      const p = track(startTsockify(['-D', '--log-file', log, `127.0.0.1:${port}`, `127.0.0.1:${target.port}`]));
      expect(await p.exited).to.equal(0);
      const m = /running in the background as pid (\d+), listening on 127\.0\.0\.1:(\d+)/.exec(p.stderr());
      expect(m, p.stderr()).to.not.equal(null);
      const pid = Number(m![1]);
      try {
        const ws = await openWs(`ws://127.0.0.1:${port}/`);
        expect(await echoRoundTrip(ws, 'daemon')).to.equal('daemon');
        await closeWs(ws);
        await until(() => fs.readFileSync(log, 'utf8').includes('session 1 closed'), () => 'the session in the log file');
        expect(fs.readFileSync(log, 'utf8')).to.include('  - Backgrounding (daemon)');
      } finally {
        process.kill(pid, 'SIGTERM');
      }
      await until(() => { try { process.kill(pid, 0); return false; } catch { return true; } }, () => `pid ${pid} to exit`);
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it("reports the detached copy's startup error and exit code in the foreground", async () => {
      const first = await startListening([`127.0.0.1:${target.port}`]);
      const p = track(startTsockify(['-D', `127.0.0.1:${first.port}`, `127.0.0.1:${target.port}`]));
      expect(await p.exited).to.equal(1);
      expect(p.stderr()).to.match(/^tsockify: cannot listen on 127\.0\.0\.1:\d+: address in use/);
      await first.proc.stop();
    });
  });
});

describe('main() in-process', () => {
  let target: TcpTargetServer;
  before(async () => { target = await startTcpTarget(); });
  after(async () => { await target?.close(); });

  function sink(): { stream: Writable; text(): string } {
    let text = '';
    const stream = new Writable({ write(c: Buffer, _e, cb) { text += c.toString(); cb(); } });
    return { stream, text: () => text };
  }

  it('returns the exit code instead of exiting: 0 for --help, 2 for a usage error', async () => {
    const { main } = await import('../../packages/cli/src/main.js');
    const out = sink();
    const err = sink();
    expect(await main(['--help'], { stdout: out.stream, stderr: err.stream })).to.equal(0);
    expect(out.text()).to.match(/^Usage: \n {4}tsockify \[options\]/);
    expect(await main(['6080'], { stdout: out.stream, stderr: err.stream })).to.equal(2);
    expect(err.text()).to.match(/^tsockify: Too few arguments \(/);
  });

  it('serves until --run-once ends it, then resolves 0', async () => {
    const { main } = await import('../../packages/cli/src/main.js');
    const port = await freePort();
    const err = sink();
    const done = main(['--run-once', `127.0.0.1:${port}`, `127.0.0.1:${target.port}`], { stdout: sink().stream, stderr: err.stream, signals: false });
    await until(() => err.text().includes('tsockify: listening on'), () => 'the startup line');
    const ws = await openWs(`ws://127.0.0.1:${port}/`);
    expect(await echoRoundTrip(ws, 'in process')).to.equal('in process');
    await closeWs(ws);
    expect(await done).to.equal(0);
    expect(jsonLines(err.text()).some((l) => /session 1 closed/.test(String(l.msg)))).to.equal(true);
  });
});
