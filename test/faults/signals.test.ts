/**
 * SIGTERM and SIGHUP under load, against the real command.
 * - SIGTERM: every live session is closed with 1001 "Server shutting down" after what was
 *   already relayed (each client holds an exact prefix of its target's stream), and the
 *   process exits 0 promptly.
 * - SIGHUP with --log-file: the log file is re-opened (logrotate moved it away), the sessions
 *   carry on byte-exact, the process stays up and holds no more file descriptors than before.
 */
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type net from 'node:net';
import { startTcpTarget, type TcpTargetServer } from '../helpers/net.js';
import { startGoodSession } from '../fuzz/good-session.js';
import { startCli } from '../soak/cli.js';
import { openClient, until, type TestClient } from './client-helper.js';
import { fdCount, waitAtMost } from './leaks.js';

const SESSIONS = 20;
const STREAM_CAP = 2 * 1024 * 1024;

describe('faults: signals under load', function () {
  this.timeout(60_000);

  it('SIGTERM closes every live session with 1001 after an exact prefix of its stream and exits 0', async () => {
    // Each target connection streams random bytes (and keeps them) until the cap.
    const sent = new Map<net.Socket, Buffer[]>();
    const target: TcpTargetServer = await startTcpTarget((s) => {
      const chunks: Buffer[] = [];
      sent.set(s, chunks);
      let total = 0;
      const pump = (): void => {
        while (total < STREAM_CAP && !s.destroyed) {
          const c = randomBytes(16 * 1024);
          chunks.push(c);
          total += c.length;
          if (!s.write(c)) { s.once('drain', pump); return; }
        }
      };
      s.resume();
      pump();
    });
    const cli = await startCli([], [`127.0.0.1:${target.port}`]);
    try {
      const clients: TestClient[] = [];
      for (let i = 0; i < SESSIONS; i++) clients.push(await openClient(`ws://127.0.0.1:${cli.port}/`));
      await until('every session streaming', () => clients.every((c) => c.received() > 64 * 1024), 10_000);
      const signalledAt = Date.now();
      process.kill(cli.pid, 'SIGTERM');
      const closes = await Promise.all(clients.map((c) => c.closed));
      const code = await cli.proc.exited;
      const exitedAfter = Date.now() - signalledAt;
      for (const c of closes) {
        expect([c.code, c.reason]).to.deep.equal([1001, 'Server shutting down']);
        expect(c.at - signalledAt).to.be.below(3500);
      }
      expect(code).to.equal(0);
      expect(exitedAfter).to.be.below(5000);
      // Pair clients and target sockets by what they received: each client holds a prefix of one stream.
      const streams = [...sent.values()].map((chunks) => Buffer.concat(chunks));
      for (const c of clients) {
        const n = c.received();
        const head = c.head(32);
        const match = streams.find((s) => s.length >= n && s.subarray(0, head.length).equals(head) && createHash('sha256').update(s.subarray(0, n)).digest('hex') === c.digest());
        expect(match, `client with ${n} bytes holds a prefix of a target stream`).to.not.equal(undefined);
      }
      expect(cli.output()).to.match(/SIGTERM received: closing \d+ session/);
    } finally {
      await cli.stop();
      await target.close();
    }
  });

  it('SIGHUP with --log-file re-opens the moved log file and leaves sessions and fds as they were', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsockify-hup-'));
    const log = path.join(dir, 'tsockify.log');
    const target = await startTcpTarget();
    const cli = await startCli(['--log-file', log], [`127.0.0.1:${target.port}`]);
    try {
      const goods = await Promise.all(Array.from({ length: 10 }, () => startGoodSession(`ws://127.0.0.1:${cli.port}/`)));
      await new Promise((r) => setTimeout(r, 300));
      const fdBefore = fdCount(cli.pid);
      fs.renameSync(log, `${log}.1`);
      process.kill(cli.pid, 'SIGHUP');
      await until('a new log file with the SIGHUP line', () => fs.existsSync(log) && fs.readFileSync(log, 'utf8').includes('SIGHUP: log file re-opened'));
      // The sessions keep going; a new one is logged to the new file.
      const extra = await openClient(`ws://127.0.0.1:${cli.port}/`);
      extra.ws.close(1000);
      await extra.closed;
      await until('the next session logged in the new file', () => /session \d+ closed/.test(fs.readFileSync(log, 'utf8')));
      expect(fs.readFileSync(`${log}.1`, 'utf8')).to.match(/listening on/);
      for (const g of goods) {
        const r = await g.finish();
        expect(r.unexpectedClose).to.equal(undefined);
        expect(r.echoedSha256).to.equal(r.sentSha256);
      }
      expect(cli.proc.child.exitCode).to.equal(null);
      // Ten sessions (20 sockets) fewer than at fdBefore: the log file was swapped, not added.
      await waitAtMost('tsockify fds', () => fdCount(cli.pid), fdBefore - 20, 3000);
    } finally {
      await cli.stop();
      await target.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
