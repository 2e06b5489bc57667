/**
 * A token plugin's backend dying and coming back, against the real command: a local HTTP token
 * API (BaseTokenAPI) and a real redis-server (TokenRedis), each stopped by PID and restarted on
 * the same port. While the backend is down, new upgrades get 503 (fail closed, never a target
 * from nowhere); sessions already established are untouched; when it returns, upgrades succeed
 * again without restarting tsockify; the process's file descriptors return to their baseline.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import http from 'node:http';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { freePort, startTcpTarget, waitForPort, type TcpTargetServer } from '../helpers/net.js';
import { startProcess, type Proc } from '../helpers/proc.js';
import { startGoodSession } from '../fuzz/good-session.js';
import { startCli, type Cli } from '../soak/cli.js';
import { fdCount, waitAtMost } from './leaks.js';

const exec = promisify(execFile);

/** 101, or the refusal status. */
function upgradeStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, { headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version': '13' } });
    req.on('upgrade', (_res, socket) => { socket.destroy(); resolve(101); });
    req.on('response', (res) => { res.resume(); resolve(res.statusCode ?? 0); });
    req.on('error', () => resolve(-1));
  });
}

async function eventually(what: string, fn: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await fn()) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('faults: a plugin backend dying and returning', function () {
  this.timeout(60_000);
  let target: TcpTargetServer;
  before(async () => { target = await startTcpTarget(); });
  after(async () => { await target?.close(); });

  describe('BaseTokenAPI (an HTTP token service)', () => {
    let apiPort: number;
    let api: http.Server | undefined;
    let cli: Cli;

    async function startApi(): Promise<void> {
      api = http.createServer((req, res) => {
        const ok = req.url === '/token/good';
        res.writeHead(ok ? 200 : 404, { 'Content-Type': 'text/plain' }).end(ok ? `127.0.0.1:${target.port}` : '');
      });
      api.listen(apiPort, '127.0.0.1');
      await once(api, 'listening');
    }
    async function stopApi(): Promise<void> {
      const s = api!;
      api = undefined;
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }

    before(async () => {
      apiPort = await freePort();
      await startApi();
      cli = await startCli(['--token-plugin', 'BaseTokenAPI', '--token-source', `http://127.0.0.1:${apiPort}/token/%s`], []);
    });
    after(async () => {
      await cli?.stop();
      if (api) await stopApi();
    });

    it('answers 503 while the service is down, keeps live sessions, and recovers when it returns', async () => {
      const url = `http://127.0.0.1:${cli.port}/?token=good`;
      expect(await upgradeStatus(url)).to.equal(101);
      expect(await upgradeStatus(`http://127.0.0.1:${cli.port}/?token=bad`)).to.equal(401);
      await new Promise((r) => setTimeout(r, 200));
      const fdBaseline = fdCount(cli.pid);
      const live = await startGoodSession(`ws://127.0.0.1:${cli.port}/?token=good`);

      await stopApi();
      expect(await upgradeStatus(url), 'service down').to.equal(503);
      expect(await upgradeStatus(`http://127.0.0.1:${cli.port}/?token=bad`), 'unknown token while down: still no target').to.equal(503);

      await startApi();
      const recovered = await eventually('recovery', async () => (await upgradeStatus(url)) === 101, 10_000);
      expect(recovered).to.be.below(5000);

      const r = await live.finish();
      expect(r.unexpectedClose).to.equal(undefined);
      expect(r.echoedSha256).to.equal(r.sentSha256);
      expect(cli.proc.child.exitCode).to.equal(null);
      await waitAtMost('tsockify fds after recovery', () => fdCount(cli.pid), fdBaseline + 1, 5000);
      expect(cli.output()).to.match(/503|unavailable/i);
    });
  });

  describe('TokenRedis (a real redis-server)', () => {
    let redisPort: number;
    let redis: Proc | undefined;
    let cli: Cli;

    async function startRedis(): Promise<void> {
      redis = startProcess('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
      await waitForPort(redisPort);
      await exec('redis-cli', ['-h', '127.0.0.1', '-p', String(redisPort), 'SET', 'good', JSON.stringify({ host: `127.0.0.1:${target.port}` })]);
    }
    async function killRedis(): Promise<void> {
      const r = redis!;
      redis = undefined;
      r.child.kill('SIGKILL');
      await r.exited;
    }

    before(async function () {
      try {
        await exec('redis-server', ['--version']);
      } catch {
        // Installed by scripts/system-deps.sh; without it the test cannot run and says so.
        throw new Error('redis-server is not installed (scripts/system-deps.sh installs it)');
      }
      redisPort = await freePort();
      await startRedis();
      cli = await startCli(['--token-plugin', 'TokenRedis', '--token-source', `127.0.0.1:${redisPort}`], []);
    });
    after(async () => {
      await cli?.stop();
      if (redis) await redis.stop();
    });

    it('answers 503 while Redis is killed, keeps live sessions, and recovers when it restarts', async () => {
      const url = `http://127.0.0.1:${cli.port}/?token=good`;
      expect(await upgradeStatus(url)).to.equal(101);
      await new Promise((r) => setTimeout(r, 200));
      const fdBaseline = fdCount(cli.pid);
      const live = await startGoodSession(`ws://127.0.0.1:${cli.port}/?token=good`);

      await killRedis();
      const started = Date.now();
      expect(await upgradeStatus(url), 'Redis down').to.equal(503);
      expect(Date.now() - started, 'fails closed within the command timeout').to.be.below(6000);

      await startRedis();
      const recovered = await eventually('recovery', async () => (await upgradeStatus(url)) === 101, 15_000);
      expect(recovered).to.be.below(10_000);

      const r = await live.finish();
      expect(r.unexpectedClose).to.equal(undefined);
      expect(r.echoedSha256).to.equal(r.sentSha256);
      expect(cli.proc.child.exitCode).to.equal(null);
      // One Redis connection before, one after: no socket left from the dead server.
      await waitAtMost('tsockify fds after recovery', () => fdCount(cli.pid), fdBaseline, 5000);
    });
  });
});
