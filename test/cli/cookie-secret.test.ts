/**
 * `--cookie-secret-file`: gateways that share the key accept each other's exchange cookies;
 * a gateway with another key does not; a bad key file stops startup with a precise message.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { WebSocket } from 'ws';
import { startTcpTarget, type TcpTargetServer } from '../helpers/net.js';
import { startTsockify } from '../helpers/proc.js';
import { closeWs, echoRoundTrip, startListening, tmpDir, track, type Running } from './fixtures.js';

/** Trade ?token= for the exchange cookie on one gateway; resolves with `name=value`. */
async function exchange(t: Running, token: string): Promise<string> {
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: t.port, path: `/?token=${token}`, agent: false }, resolve).on('error', reject);
  });
  res.resume();
  expect(res.statusCode).to.equal(303);
  return res.headers['set-cookie']![0]!.split(';')[0]!;
}

/** Open a WebSocket with a Cookie header: the socket, or the refusal's HTTP status. */
function openWithCookie(t: Running, cookie: string): Promise<WebSocket | number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(t.url(), ['binary'], { headers: { Cookie: cookie }, handshakeTimeout: 5000 });
    ws.once('open', () => { ws.removeAllListeners('error'); ws.on('error', () => {}); resolve(ws); });
    ws.once('unexpected-response', (_q, res) => { res.resume(); resolve(res.statusCode ?? 0); ws.terminate(); });
    ws.once('error', reject);
  });
}

describe('tsockify --cookie-secret-file', function () {
  this.timeout(30_000);
  let target: TcpTargetServer;
  let dir: string;
  let tokens: string;
  before(async () => {
    target = await startTcpTarget();
    dir = tmpDir('cookie-secret');
    tokens = path.join(dir, 'tokens');
    fs.writeFileSync(tokens, `desk1: 127.0.0.1:${target.port}\n`);
  });
  after(async () => {
    await target.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function keyFile(name: string, text: string, mode = 0o600): string {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text, { mode });
    fs.chmodSync(file, mode);
    return file;
  }

  it('lets a cookie sealed by one gateway open a session on another with the same key, and not on one with another key', async () => {
    const shared = keyFile('shared.key', 'bG9hZC1iYWxhbmNlZCBnYXRld2F5IGtleSAzMiBieXRlcw==\n');
    const other = keyFile('other.key', 'c29tZSBvdGhlciBnYXRld2F5IGtleSwgMzIgYnl0ZXMh\n');
    const common = ['--token-plugin', 'TokenFile', '--token-source', tokens];
    const a = await startListening([...common, '--cookie-secret-file', shared]);
    const b = await startListening([...common, '--cookie-secret-file', shared]);
    const c = await startListening([...common, '--cookie-secret-file', other]);
    const cookie = await exchange(a, 'desk1');
    const onB = await openWithCookie(b, cookie);
    expect(onB, 'the other gateway with the same key').to.be.instanceOf(WebSocket);
    expect(await echoRoundTrip(onB as WebSocket, 'same key')).to.equal('same key');
    await closeWs(onB as WebSocket);
    expect(await openWithCookie(c, cookie), 'a gateway with another key').to.equal(401);
    // A restart with the same key still opens cookies sealed before it.
    expect(await a.proc.stop()).to.equal(0);
    const again = await startListening([...common, '--cookie-secret-file', shared]);
    const onAgain = await openWithCookie(again, cookie);
    expect(onAgain).to.be.instanceOf(WebSocket);
    await closeWs(onAgain as WebSocket);
    for (const t of [b, c, again]) expect(await t.proc.stop()).to.equal(0);
  });

  it('gives --workers the key from the file: a cookie sealed elsewhere opens on every worker', async () => {
    const shared = keyFile('workers.key', 'one key for a single gateway and a pool of workers\n');
    const common = ['--token-plugin', 'TokenFile', '--token-source', tokens, '--cookie-secret-file', shared];
    const single = await startListening(common);
    const pool = await startListening(['--workers', '2', ...common]);
    const cookie = await exchange(single, 'desk1');
    // Round-robin: two sessions in a row land on the two workers.
    for (const n of [1, 2]) {
      const ws = await openWithCookie(pool, cookie);
      expect(ws, `session ${n} on the workers`).to.be.instanceOf(WebSocket);
      expect(await echoRoundTrip(ws as WebSocket, `worker ${n}`)).to.equal(`worker ${n}`);
      await closeWs(ws as WebSocket);
    }
    const pids = new Set(pool.proc.stderr().split('\n').filter((l) => l.includes('opened:')).map((l) => (JSON.parse(l) as { pid: number }).pid));
    expect(pids.size, 'both workers took a session').to.equal(2);
    for (const t of [single, pool]) expect(await t.proc.stop()).to.equal(0);
  });

  it('warns when others can read the key file', async () => {
    const open = keyFile('open.key', 'a key that everyone on this machine can read\n', 0o644);
    const t = await startListening(['--token-plugin', 'TokenFile', '--token-source', tokens, '--cookie-secret-file', open]);
    expect(t.proc.stderr()).to.include(`--cookie-secret-file \\"${open}\\" can be read by other users (mode 644)`);
    expect(await t.proc.stop()).to.equal(0);
  });

  it('refuses a key shorter than 16 bytes, a missing file, and a key without a token plugin', async () => {
    const short = keyFile('short.key', 'short\n');
    const p1 = track(startTsockify(['--token-plugin', 'TokenFile', '--token-source', tokens, '--cookie-secret-file', short, '127.0.0.1:0']));
    expect(await p1.exited).to.equal(1);
    expect(p1.stderr()).to.include(`--cookie-secret-file "${short}" holds 5 bytes: a cookie key needs at least 16 (write 32 random bytes to it, e.g. head -c 32 /dev/urandom | base64 > FILE)`);
    const missing = path.join(dir, 'missing.key');
    const p2 = track(startTsockify(['--token-plugin', 'TokenFile', '--token-source', tokens, '--cookie-secret-file', missing, '127.0.0.1:0']));
    expect(await p2.exited).to.equal(1);
    expect(p2.stderr()).to.include(`cannot read --cookie-secret-file file "${missing}": no such file (check the path and its permissions)`);
    const p3 = track(startTsockify(['--cookie-secret-file', short, '127.0.0.1:0', `127.0.0.1:${target.port}`]));
    expect(await p3.exited).to.equal(2);
    expect(p3.stderr()).to.equal('tsockify: You must use --token-plugin to use --cookie-secret-file (the cookie holds a token: add --token-plugin CLASS)\n');
  });
});
