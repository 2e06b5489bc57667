/**
 * `--workers N` (packages/cli/src/workers.ts, worker.ts), with the built command: a primary
 * and real worker processes sharing one listening socket, real WebSockets, a real TCP echo
 * target. Worker log lines carry their `pid`, which tells which worker served a session.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Writable } from 'node:stream';
import { WebSocket } from 'ws';
import { runTokenCommand } from '../../packages/cli/src/token-command.js';
import { startTcpTarget, type TcpTargetServer } from '../helpers/net.js';
import { startProcess, startTsockify, tsockifyBin, type Proc } from '../helpers/proc.js';
import {
  closeWs, echoRoundTrip, freePort, jsonLines, openWs, startListening, tmpDir, track, until, waitClose, type Running,
} from './fixtures.js';

/** The worker PIDs the primary names in its startup line. */
function workerPids(proc: Proc): number[] {
  const line = jsonLines(proc.stderr()).find((l) => String(l.msg).startsWith('tsockify: listening on'));
  return (line?.workers as number[] | undefined) ?? [];
}

/** `session N opened` lines: the id and the PID of the worker that logged it. */
function openedSessions(proc: Proc): Array<{ id: number; pid: number }> {
  return jsonLines(proc.stderr())
    .filter((l) => /^session \d+ opened/.test(String(l.msg)))
    .map((l) => ({ id: l.session as number, pid: l.pid as number }));
}

function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

async function gone(pids: number[]): Promise<void> {
  await until(() => pids.every(isGone), () => `pids ${pids.filter((p) => !isGone(p)).join(', ')} to exit`);
}

/** Open `n` sessions one after another (round-robin hands them to the workers in turn). */
async function openSessions(t: Running, n: number, opts: { headers?: Record<string, string> } = {}): Promise<WebSocket[]> {
  const out: WebSocket[] = [];
  for (let i = 0; i < n; i++) {
    out.push(opts.headers ? await openWithHeaders(t.url(), opts.headers) : await openWs(t.url()));
  }
  return out;
}

function openWithHeaders(url: string, headers: Record<string, string>): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['binary'], { headers, handshakeTimeout: 5000 });
    ws.once('open', () => { ws.removeAllListeners('error'); ws.on('error', () => { /* reported through close */ }); resolve(ws); });
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => { res.resume(); reject(new Error(`HTTP ${res.statusCode}`)); ws.terminate(); });
  });
}

describe('tsockify --workers', function () {
  this.timeout(20_000);
  let target: TcpTargetServer;
  before(async () => { target = await startTcpTarget(); });
  after(async () => { await target?.close(); });

  describe('serving', () => {
    it('prints the startup line once and spreads sessions over two workers, each relaying to the target', async () => {
      const t = await startListening(['--workers', '2', `127.0.0.1:${target.port}`]);
      const pids = workerPids(t.proc);
      expect(pids).to.have.length(2);
      expect(pids).to.not.include(t.proc.child.pid);
      expect(t.proc.stderr().match(/tsockify: listening on/g)).to.have.length(1);
      expect(t.proc.stderr().match(/WebSocket server settings:/g)).to.have.length(1);

      const [a, b] = await openSessions(t, 2);
      expect(await echoRoundTrip(a!, 'first')).to.equal('first');
      expect(await echoRoundTrip(b!, 'second')).to.equal('second');
      await until(() => openedSessions(t.proc).length === 2, () => 'two session lines');
      const sessions = openedSessions(t.proc);
      expect(new Set(sessions.map((s) => s.pid))).to.deep.equal(new Set(pids));
      // Worker k of 2 numbers its sessions k, k + 2, ...: the ids differ in parity.
      expect(new Set(sessions.map((s) => s.id % 2)).size).to.equal(2);
      await closeWs(a!);
      await closeWs(b!);
      expect(await t.proc.stop()).to.equal(0);
      await gone(pids);
    });

    it('SIGTERM closes live sessions on every worker with 1001; the primary exits 0 and no worker is left', async () => {
      const t = await startListening(['--workers', '2', `127.0.0.1:${target.port}`]);
      const pids = workerPids(t.proc);
      const sockets = await openSessions(t, 2);
      await until(() => openedSessions(t.proc).length === 2, () => 'two session lines');
      expect(new Set(openedSessions(t.proc).map((s) => s.pid)).size).to.equal(2);
      const closed = sockets.map(waitClose);
      t.proc.child.kill('SIGTERM');
      expect((await Promise.all(closed)).map((c) => c.code)).to.deep.equal([1001, 1001]);
      expect(await t.proc.exited).to.equal(0);
      await gone(pids);
      expect(t.proc.stderr()).to.match(/worker 1 \(pid \d+\) exited \(exit code 0\)/);
      expect(t.proc.stderr()).to.match(/worker 2 \(pid \d+\) exited \(exit code 0\)/);
    });

    it('restarts a worker killed with SIGKILL, logs it, and keeps session ids unique', async () => {
      const t = await startListening(['--workers', '2', `127.0.0.1:${target.port}`]);
      const [first, second] = workerPids(t.proc);
      const before = await openSessions(t, 2);
      await until(() => openedSessions(t.proc).length === 2, () => 'two session lines');
      for (const ws of before) await closeWs(ws);

      process.kill(first!, 'SIGKILL');
      const died = await t.proc.waitForOutput(new RegExp(`worker (\\d) \\(pid ${first}\\) died \\(killed by SIGKILL\\); restarting it in 1 s`));
      const slot = died[1]!;
      const [, newPid] = await t.proc.waitForOutput(new RegExp(`worker ${slot} started \\(pid (?!${first}\\))(\\d+)\\)`));
      await t.proc.waitForOutput(new RegExp(`worker ${slot} listening again`));
      await gone([first!]);

      const after = await openSessions(t, 2);
      for (const [i, ws] of after.entries()) expect(await echoRoundTrip(ws, `after ${i}`)).to.equal(`after ${i}`);
      await until(() => openedSessions(t.proc).length === 4, () => 'four session lines');
      const sessions = openedSessions(t.proc);
      expect(new Set(sessions.slice(2).map((s) => s.pid))).to.deep.equal(new Set([second, Number(newPid)]));
      expect(new Set(sessions.map((s) => s.id)).size, JSON.stringify(sessions)).to.equal(4);
      for (const ws of after) await closeWs(ws);
      expect(await t.proc.stop()).to.equal(0);
      await gone([second!, Number(newPid)]);
    });

    it('gives up, stopping the other worker and exiting 1, when workers die more than 5 times within 60 s', async () => {
      const t = await startListening(['--workers', '2', `127.0.0.1:${target.port}`]);
      const [victim, survivor] = workerPids(t.proc);
      const seen = [victim!];
      let pid = victim!;
      for (let death = 1; death <= 6; death++) {
        process.kill(pid, 'SIGKILL');
        if (death === 6) break;
        await t.proc.waitForOutput(new RegExp(`worker 1 \\(pid ${pid}\\) died \\(killed by SIGKILL\\); restarting it in 1 s`));
        pid = Number((await t.proc.waitForOutput(new RegExp(`worker 1 started \\(pid (?!(?:${seen.join('|')})\\))(\\d+)\\)`)))[1]);
        seen.push(pid);
      }
      expect(await t.proc.exited).to.equal(1);
      expect(t.proc.stderr()).to.match(/workers died 6 times within 60 s: not restarting; stopping the other workers and exiting/);
      await gone([pid, survivor!]);
    });

    it('passes SIGHUP on: the primary and every worker re-open --log-file', async () => {
      const dir = tmpDir('workers-hup');
      const log = path.join(dir, 't.log');
      const t = await startListening(['--workers', '2', '--log-file', log, `127.0.0.1:${target.port}`]);
      const pids = workerPids(t.proc);
      fs.renameSync(log, `${log}.1`);
      t.proc.child.kill('SIGHUP');
      const reopened = (): number[] => (fs.existsSync(log) ? jsonLines(fs.readFileSync(log, 'utf8')) : [])
        .filter((l) => /^SIGHUP: log file re-opened/.test(String(l.msg))).map((l) => l.pid as number);
      await until(() => reopened().length === 3, () => `three re-open lines, got pids ${reopened().join(', ')}`);
      expect(new Set(reopened())).to.deep.equal(new Set([t.proc.child.pid, ...pids]));
      expect(await t.proc.stop()).to.equal(0);
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('accepts a --cookie-exchange cookie on every worker, whichever worker sealed it', async () => {
      const dir = tmpDir('workers-cookie');
      const tokens = path.join(dir, 'tokens');
      fs.writeFileSync(tokens, `desk1: 127.0.0.1:${target.port}\n`);
      const t = await startListening(['--workers', '2', '--token-plugin', 'TokenFile', '--token-source', tokens, '--cookie-exchange']);
      const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port: t.port, path: '/?token=desk1', agent: false }, resolve).on('error', reject);
      });
      res.resume();
      expect(res.statusCode).to.equal(303);
      const cookie = res.headers['set-cookie']![0]!.split(';')[0]!;
      const sockets = await openSessions(t, 3, { headers: { Cookie: cookie } });
      for (const ws of sockets) expect(await echoRoundTrip(ws, 'cookie')).to.equal('cookie');
      await until(() => openedSessions(t.proc).length === 3, () => 'three session lines');
      expect(new Set(openedSessions(t.proc).map((s) => s.pid)).size).to.equal(2);
      for (const ws of sockets) await closeWs(ws);
      expect(await t.proc.stop()).to.equal(0);
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('serves one-time tokens kept in Redis: a token opens one session, whichever worker sees it again refuses it', async function () {
      this.timeout(30_000);
      const redisPort = await freePort();
      const redis = track(startProcess('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']));
      const dir = tmpDir('workers-once-redis');
      try {
        await redis.waitForOutput(/Ready to accept connections/);
        const keys = path.join(dir, 'hs.keys');
        let text = '';
        const out = new Writable({ write(c: Buffer, _e, cb) { text += c.toString(); cb(); } });
        expect(await runTokenCommand(['keygen'], { stdout: out, stderr: out, cwd: dir })).to.equal(0);
        fs.writeFileSync(keys, text);
        const sign = async (): Promise<string> => {
          let token = '';
          const w = new Writable({ write(c: Buffer, _e, cb) { token += c.toString(); cb(); } });
          const args = ['sign', '--keys', keys, '--host', '127.0.0.1', '--port', String(target.port), '--print', 'token'];
          expect(await runTokenCommand(args, { stdout: w, stderr: w, cwd: dir })).to.equal(0);
          return token.trim();
        };
        const t = await startListening(['--workers', '2', '--token-plugin', 'SignedToken', '--token-source', `${keys}::once:127.0.0.1:${redisPort}`]);
        // Four tokens, each used twice in a row: round-robin gives the second use to the other worker.
        for (let i = 0; i < 4; i++) {
          const url = t.url(`/websockify?token=${await sign()}`);
          const ws = await openWs(url);
          expect(await echoRoundTrip(ws, `once ${i}`)).to.equal(`once ${i}`);
          await openWs(url).then(
            () => { throw new Error('a used token opened a second session'); },
            (err: Error) => expect(err.message).to.equal('HTTP 401'),
          );
        }
        await until(() => openedSessions(t.proc).length === 4, () => 'four session lines');
        expect(await t.proc.stop()).to.equal(0);
      } finally {
        await redis.stop();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it('-D: the background copy is the primary; it serves and stops its workers on SIGTERM', async () => {
      const dir = tmpDir('workers-daemon');
      const log = path.join(dir, 'd.log');
      const port = await freePort();
      const p = track(startTsockify(['-D', '--workers', '2', '--log-file', log, `127.0.0.1:${port}`, `127.0.0.1:${target.port}`]));
      expect(await p.exited, p.stderr()).to.equal(0);
      const primary = Number(/running in the background as pid (\d+)/.exec(p.stderr())?.[1]);
      const listening = jsonLines(fs.readFileSync(log, 'utf8')).find((l) => String(l.msg).startsWith('tsockify: listening on'));
      const pids = (listening?.workers as number[] | undefined) ?? [];
      try {
        expect(pids).to.have.length(2);
        const ws = await openWs(`ws://127.0.0.1:${port}/`);
        expect(await echoRoundTrip(ws, 'daemon')).to.equal('daemon');
        await closeWs(ws);
      } finally {
        process.kill(primary, 'SIGTERM');
      }
      await gone([primary, ...pids]);
      expect(fs.readFileSync(log, 'utf8')).to.include('  - Backgrounding (daemon)');
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('serves a --unix-listen socket from every worker', async () => {
      const dir = tmpDir('workers-unix');
      const sock = path.join(dir, 't.sock');
      // A socket file left by a process that died is replaced, as with one process.
      const stale = track(startProcess(process.execPath, ['-e', 'require("net").createServer().listen(process.argv[1], () => process.exit(0))', sock]));
      expect(await stale.exited).to.equal(0);
      expect(fs.statSync(sock).isSocket()).to.equal(true);
      const proc = track(startTsockify(['--workers', '2', '--unix-listen', sock, `127.0.0.1:${target.port}`]));
      await proc.waitForOutput(/tsockify: listening on/);
      const sockets: WebSocket[] = [];
      for (let i = 0; i < 2; i++) {
        const ws = new WebSocket(`ws+unix://${sock}:/websockify`);
        await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
        sockets.push(ws);
      }
      for (const ws of sockets) expect(await echoRoundTrip(ws, 'unix')).to.equal('unix');
      await until(() => openedSessions(proc).length === 2, () => 'two session lines');
      expect(new Set(openedSessions(proc).map((s) => s.pid)).size).to.equal(2);
      for (const ws of sockets) await closeWs(ws);
      expect(await proc.stop()).to.equal(0);
      fs.rmSync(dir, { recursive: true, force: true });
    });
  });

  describe('startup errors', () => {
    it('exits 1 with the single-process message when the port is taken', async () => {
      const first = await startListening([`127.0.0.1:${target.port}`]);
      const p = track(startTsockify(['--workers', '2', `127.0.0.1:${first.port}`, `127.0.0.1:${target.port}`]));
      expect(await p.exited).to.equal(1);
      expect(p.stderr()).to.match(new RegExp(`\\ntsockify: cannot listen on 127\\.0\\.0\\.1:${first.port}: address in use \\(stop the other process or pick another port\\)\\n$`));
      expect(p.stderr().match(/cannot listen/g)).to.have.length(1);
      expect(p.stderr()).to.not.include('tsockify: listening on');
      await first.proc.stop();
    });

    it('refuses a file that is not a socket at the --unix-listen path, in one process and before any worker, saying so once', async () => {
      const dir = tmpDir('workers-notasock');
      const file = path.join(dir, 'in-the-way');
      fs.writeFileSync(file, 'keep me\n');
      for (const extra of [[], ['--workers', '2']]) {
        const p = track(startTsockify([...extra, '--unix-listen', file, `127.0.0.1:${target.port}`]));
        expect(await p.exited).to.equal(1);
        expect(p.stderr().trimEnd().split('\n').pop()).to.equal(`tsockify: cannot listen on unix socket ${file}: a file that is not a socket is in the way`);
        expect(p.stderr()).to.not.include('worker 1 started');
        expect(fs.readFileSync(file, 'utf8'), 'the file is left alone').to.equal('keep me\n');
      }
      fs.rmSync(dir, { recursive: true, force: true });
    });

    const badCounts: Array<[string, string]> = [
      ['0', "tsockify: option --workers: invalid value: '0' (N must be at least 1)\n"],
      ['abc', "tsockify: option --workers: invalid integer value: 'abc' (give N as a whole number, or auto)\n"],
    ];
    for (const [value, message] of badCounts) {
      it(`refuses --workers ${value} with exit 2`, async () => {
        const p = track(startTsockify(['--workers', value, '127.0.0.1:0', `127.0.0.1:${target.port}`]));
        expect(await p.exited).to.equal(2);
        expect(p.stderr()).to.equal(message);
      });
    }
  });

  describe('refused combinations', () => {
    const timeoutHint = (flag: string): string =>
      `${flag} decides when the process exits from the sessions it sees, and each worker sees only its own: drop --workers, or drop ${flag} and stop tsockify with SIGTERM`;
    const refusals: Array<[string, string[], string]> = [
      ['--run-once', ['--run-once'], '--workers cannot be combined with --run-once (--run-once serves one connection in one process: drop --workers)'],
      ['--timeout', ['--timeout', '5'], `--workers cannot be combined with --timeout (${timeoutHint('--timeout')})`],
      ['--idle-timeout', ['--idle-timeout', '5'], `--workers cannot be combined with --idle-timeout (${timeoutHint('--idle-timeout')})`],
      ['--inetd', ['--inetd'],
        '--workers cannot be combined with --inetd (the workers cannot share the socket passed on fd 0: give [source_addr:]source_port instead of --inetd, or drop --workers)'],
      ['a wrapped command', ['--', 'sleep', '5'],
        '--workers cannot be combined with a wrapped command (-- COMMAND) (every worker would start its own COMMAND: start it separately and give target_addr:target_port, or drop --workers)'],
    ];
    for (const [what, extra, message] of refusals) {
      it(`refuses --workers 2 with ${what} (exit 2)`, async () => {
        const positional = what === 'a wrapped command' ? ['127.0.0.1:0'] : what === '--inetd' ? [`127.0.0.1:${target.port}`] : ['127.0.0.1:0', `127.0.0.1:${target.port}`];
        const args = extra[0] === '--' ? ['--workers', '2', ...positional, ...extra] : ['--workers', '2', ...extra, ...positional];
        const p = track(startTsockify(args));
        expect(await p.exited).to.equal(2);
        expect(p.stderr()).to.equal(`tsockify: ${message}\n`);
      });
    }

    it('refuses --workers auto with --run-once whatever the CPU count', async () => {
      const p = track(startTsockify(['--workers', 'auto', '--run-once', '127.0.0.1:0', `127.0.0.1:${target.port}`]));
      expect(await p.exited).to.equal(2);
      expect(p.stderr()).to.match(/^tsockify: --workers cannot be combined with --run-once/);
    });

    it('refuses --workers 2 with systemd socket activation (exit 2)', async () => {
      const p = track(startProcess('/bin/sh', ['-c', 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"', 'sh', process.execPath, tsockifyBin, '--workers', '2', '6080', `127.0.0.1:${target.port}`]));
      expect(await p.exited).to.equal(2);
      expect(p.stderr()).to.equal(
        'tsockify: --workers cannot be combined with systemd socket activation (LISTEN_FDS) (the workers cannot share the socket systemd passes: ' +
          'start tsockify without its .socket unit and give [source_addr:]source_port, or drop --workers)\n',
      );
    });

    it('refuses --workers 2 with SignedToken one-time tokens kept in memory, before any worker starts (exit 2)', async () => {
      const dir = tmpDir('workers-once');
      const keys = path.join(dir, 'hs.keys');
      let text = '';
      const out = new Writable({ write(c: Buffer, _e, cb) { text += c.toString(); cb(); } });
      expect(await runTokenCommand(['keygen'], { stdout: out, stderr: out, cwd: dir })).to.equal(0);
      fs.writeFileSync(keys, text);
      const p = track(startTsockify(['--workers', '2', '--token-plugin', 'SignedToken', '--token-source', `${keys}::once`, '127.0.0.1:0']));
      expect(await p.exited).to.equal(2);
      expect(p.stderr()).to.not.include('worker 1 started');
      expect(p.stderr().trimEnd().split('\n').pop()).to.equal(
        'tsockify: --workers cannot be combined with one-time tokens remembered in memory (--token-source KEYS:LIFETIME:once) ' +
          '(each worker would accept the same token once: keep the used token ids in Redis with ' +
          '--token-source KEYS:LIFETIME:once:REDIS_HOST[:PORT[:DB[:PASSWORD[:NAMESPACE]]]], or drop --workers)',
      );
      fs.rmSync(dir, { recursive: true, force: true });
    });
  });
});
