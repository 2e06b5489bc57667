import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import WebSocket from 'ws';
import { createServer, tokenHash, type RejectInfo, type TokenPlugin, type TsockifyOptions, type TsockifyServer } from '@tsockify/core';
import { SignedToken, generateKey, formatKeyLine, signToken } from '../../packages/auth-plugins/src/index.js';
import { freePort, startTcpTarget, waitForPort, type TcpTargetServer } from '../helpers/net.js';
import { startProcess, type Proc } from '../helpers/proc.js';
import { captureLogger, type CapturingLogger } from './context.js';
import { tempDir } from './tmp.js';

/**
 * Failure answers through a real server (the built @tsockify/core, as the CLI runs it) with the
 * SignedToken plugin: each refusal is a 4xx/503 with a short reason, logged with the token's
 * hash and never the token; a slow or dead backend is a bounded 503 that heals by itself.
 */

function tryUpgrade(url: string): Promise<{ open: boolean; status?: number; body?: string; ws?: WebSocket }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, 'binary');
    ws.on('open', () => resolve({ open: true, ws }));
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => resolve({ open: false, status: res.statusCode ?? 0, body }));
    });
    ws.on('error', () => undefined);
  });
}

const KEY = generateKey('gw-1', 'HS256');
const OTHER = generateKey('gw-1', 'HS256');

describe('SignedToken through the server', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let keys: string;
  let target: TcpTargetServer;
  const servers: TsockifyServer[] = [];
  const plugins: TokenPlugin[] = [];

  before(async () => {
    ({ dir, cleanup } = await tempDir());
    keys = path.join(dir, 'keys');
    await writeFile(keys, `${formatKeyLine(KEY)}\n`);
    target = await startTcpTarget();
  });
  after(async () => {
    await target.close();
    await cleanup();
  });
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
    for (const p of plugins.splice(0)) await p.close?.();
  });

  async function start(plugin: TokenPlugin, extra: Partial<TsockifyOptions> = {}): Promise<{ url: (t?: string) => string; log: CapturingLogger; rejects: RejectInfo[] }> {
    const log = captureLogger();
    const s = createServer({ listen: { host: '127.0.0.1', port: 0 }, tokenPlugin: plugin, logger: log, ...extra });
    servers.push(s);
    await s.listen();
    const rejects: RejectInfo[] = [];
    s.on('reject', (r) => rejects.push(r));
    return { url: (t) => `ws://127.0.0.1:${s.port}/websockify${t === undefined ? '' : `?token=${encodeURIComponent(t)}`}`, log, rejects };
  }

  const sign = (over: Partial<Parameters<typeof signToken>[0]> = {}, key = KEY): string =>
    signToken({ host: '127.0.0.1', port: target.port, sub: 'alice', iid: 'i-1', ttlSec: 60, ...over }, key);

  it('refuses missing, expired, tampered, foreign-key and malformed tokens with 401 and a short reason, logging only a hash', async () => {
    const plugin = await SignedToken.fromSource(keys);
    plugins.push(plugin);
    const { url, log, rejects } = await start(plugin);
    const now = Math.floor(Date.now() / 1000);
    const good = sign();
    const cases: Array<[string | undefined, string]> = [
      [undefined, 'missing token'],
      [sign({ iat: now - 120, exp: now - 60, ttlSec: undefined }), 'token expired'],
      [`${good.slice(0, -4)}AAAA`, 'token signature invalid'],
      [sign({}, OTHER), 'token signature invalid'],
      [good.replace('v1.gw-1.', 'v1.gw-2.'), 'token key unknown'],
      ['not-a-token', 'malformed token'],
    ];
    for (const [token, reason] of cases) {
      const r = await tryUpgrade(url(token));
      expect(r, reason).to.deep.include({ open: false, status: 401, body: `${reason}\n` });
    }
    expect(rejects.map((r) => r.reason)).to.deep.equal(cases.map(([, reason]) => reason));
    const lines = log.records.filter((l) => l.msg === 'handshake refused');
    expect(lines).to.have.length(cases.length);
    expect(lines[1]!.obj).to.include({ tokenHash: tokenHash(cases[1]![0]!), tokenSource: 'query', reason: 'token expired', status: 401 });
    for (const [token] of cases) if (token) expect(log.text()).to.not.include(token);
    expect((await tryUpgrade(url(good))).open).to.equal(true);
  });

  it('closes the session with 1008 "Token expired" at the token\'s exp', async () => {
    const plugin = await SignedToken.fromSource(keys);
    plugins.push(plugin);
    const { url } = await start(plugin);
    const now = Math.floor(Date.now() / 1000);
    const r = await tryUpgrade(url(sign({ iat: now, exp: now + 2, ttlSec: undefined })));
    expect(r.open).to.equal(true);
    const [code, reason] = await new Promise<[number, string]>((resolve) => r.ws!.on('close', (c, why) => resolve([c, why.toString()])));
    expect(code).to.equal(1008);
    expect(reason).to.equal('Token expired');
  });

  it('answers 503 after pluginTimeoutMs while the plugin hangs, and recovers without a restart', async () => {
    const real = await SignedToken.fromSource(keys);
    plugins.push(real);
    let hang = true;
    const slow: TokenPlugin = {
      name: 'Slow',
      lookup: (token, ctx) => (hang ? new Promise(() => undefined) : real.lookup(token, ctx)),
    };
    const { url, log } = await start(slow, { pluginTimeoutMs: 300 });
    const t0 = Date.now();
    const r = await tryUpgrade(url(sign()));
    expect(Date.now() - t0).to.be.within(250, 2000);
    expect(r).to.deep.include({ status: 503, body: 'authorisation backend unavailable, try again\n' });
    expect(log.records.find((l) => l.obj['status'] === 503)?.obj['err']).to.equal('token plugin Slow did not answer within 300 ms');
    hang = false;
    expect((await tryUpgrade(url(sign()))).open).to.equal(true);
  });

  it('answers 503 (fail closed) when a plugin throws an error of its own, logging the cause', async () => {
    const { url, log } = await start({ name: 'Broken', lookup: () => { throw new Error('ECONNRESET from the backend'); } });
    const r = await tryUpgrade(url('x'));
    expect(r.status).to.equal(503);
    expect(r.body).to.not.include('ECONNRESET');
    expect(log.records.find((l) => l.obj['status'] === 503)?.obj).to.include({ err: 'token plugin Broken failed', cause: 'ECONNRESET from the backend' });
  });

  describe('one-time tokens in Redis (several nodes)', () => {
    let port: number;
    let redis: Proc | undefined;
    const redisUp = async (): Promise<void> => {
      redis = startProcess('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
      await waitForPort(port);
    };
    before(async () => {
      port = await freePort();
      await redisUp();
    });
    after(async () => {
      await redis?.stop();
    });

    it('lets a token open one session across two gateways, then refuses it on both', async () => {
      const source = `${keys}::once:127.0.0.1:${port}`;
      const a = await SignedToken.fromSource(source);
      const b = await SignedToken.fromSource(source);
      plugins.push(a, b);
      const nodeA = await start(a);
      const nodeB = await start(b);
      const token = sign();
      const first = await tryUpgrade(nodeA.url(token));
      expect(first.open).to.equal(true);
      first.ws!.close();
      expect(await tryUpgrade(nodeB.url(token))).to.deep.include({ status: 401, body: 'token already used\n' });
      expect(await tryUpgrade(nodeA.url(token))).to.deep.include({ status: 401, body: 'token already used\n' });
      const { stdout } = await promisify(execFile)('redis-cli', ['-p', String(port), 'KEYS', 'tsockify:jti:*']);
      expect(stdout.trim().split('\n')).to.have.length(1);
    });

    it('fails closed with 503 while Redis is down and works again when it returns', async function () {
      this.timeout(30_000);
      const plugin = await SignedToken.fromSource(`${keys}::once:127.0.0.1:${port}`);
      plugins.push(plugin);
      const { url } = await start(plugin, { pluginTimeoutMs: 3000 });
      await redis!.stop();
      const t0 = Date.now();
      expect((await tryUpgrade(url(sign()))).status).to.equal(503);
      expect(Date.now() - t0).to.be.below(3500);
      await redisUp();
      const deadline = Date.now() + 10_000;
      let r;
      do {
        r = await tryUpgrade(url(sign()));
        if (r.open) break;
        await new Promise((res) => setTimeout(res, 200));
      } while (Date.now() < deadline);
      expect(r.open).to.equal(true);
      r.ws?.close();
    });
  });
});
