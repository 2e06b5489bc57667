/**
 * Tokens and credentials never reach the logs (websockify logs the token in its request
 * line). The real command runs with `-v` (debug level), is given secrets every way it takes
 * them (query token, cookie, Authorization, a malformed token file line, a Redis password, a
 * key password), and its whole stdout + stderr is searched for every secret, raw and encoded.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { freePort, startTcpTarget, type TcpTargetServer } from '../helpers/net.js';
import { makeCerts, type CertSet } from '../helpers/certs.js';
import { startTsockify } from '../helpers/proc.js';
import { rawSession } from '../fuzz/frame-builder.js';
import { startCli } from '../soak/cli.js';

const secret = (label: string): string => `${label}${randomBytes(6).toString('hex')}`;

/** Every spelling of a secret that could end up in a log line. */
function spellings(s: string): string[] {
  return [s, encodeURIComponent(s), Buffer.from(s).toString('base64'), Buffer.from(s).toString('base64url'), JSON.stringify(s).slice(1, -1)];
}

function expectNotLogged(output: string, secrets: string[]): void {
  for (const s of secrets) {
    for (const sp of spellings(s)) expect(output.includes(sp), `secret ${JSON.stringify(sp)} found in the log:\n${output}`).to.equal(false);
  }
}

function basic(user: string, pw: string): string {
  return `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`;
}

/** Open a session or return the refusal (status and body). */
function attempt(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, 'binary', { headers });
    ws.on('open', () => {
      ws.send(Buffer.from('ping'));
      ws.once('message', () => { ws.close(1000); });
      ws.once('close', () => resolve({ status: 101, body: '' }));
    });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body }); ws.terminate(); });
    });
    ws.on('error', () => resolve({ status: -1, body: '' }));
  });
}

describe('security: tokens and credentials never in logs', function () {
  this.timeout(60_000);
  let dir: string;
  let target: TcpTargetServer;
  let certs: CertSet;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsockify-secrets-'));
    target = await startTcpTarget();
    certs = makeCerts();
  });
  after(async () => {
    await target?.close();
    certs?.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('with -v, logs no token (query, encoded, cookie, malformed file line) and no Basic credentials', async () => {
    const token = secret('TOKEN');
    const lineToken = secret('LINETOKEN');
    const password = secret('PASSWORD');
    const wrongPassword = secret('WRONGPW');
    const unknownToken = secret('UNKNOWN');
    const cookieToken = secret('COOKIE');
    const bearer = secret('BEARER');
    const quoted = `${secret('QUOTE')}"'<>;${secret('AFTERQUOTE')}`;
    const tokenFile = path.join(dir, 'tokens');
    fs.writeFileSync(tokenFile, [
      `${token}: 127.0.0.1:${target.port}`,
      `${lineToken} this line has no separator 127.0.0.1:${target.port}`,
      `${quoted}: 127.0.0.1:${target.port}`,
    ].join('\n'));
    const cli = await startCli(['-v', '--token-plugin', 'TokenFile', '--token-source', tokenFile, '--auth-plugin', 'BasicHTTPAuth', '--auth-source', `alice:${password}`], []);
    try {
      const base = `ws://127.0.0.1:${cli.port}/websockify`;
      const good = { Authorization: basic('alice', password) };
      const answers = [
        await attempt(`${base}?token=${token}`, good),
        await attempt(`${base}?token=${encodeURIComponent(quoted)}`, good),
        await attempt(`${base}?a=1&token=${token}&b=2`, { Authorization: basic('alice', wrongPassword) }),
        await attempt(`${base}?token=${unknownToken}`, good),
        await attempt(`${base}?token=${unknownToken.slice(0, 4)}%${unknownToken.slice(4, 6)}${unknownToken.slice(6)}`, good),
        await attempt(`${base}?token=${token}`, { Authorization: `Bearer ${bearer}` }),
        await attempt(base, { ...good, Cookie: `token=${cookieToken}; other=1` }),
        await attempt(`${base}?token=${token}`, { Authorization: basic(password, password) }),
      ];
      expect(answers.map((a) => a.status)).to.deep.equal([101, 101, 401, 401, 401, 403, 401, 401]);
      // What the client is told never holds a secret either.
      expectNotLogged(answers.map((a) => a.body).join('\n'), [token, unknownToken, password, wrongPassword, cookieToken, bearer]);
      // A raw request with the token in a header we do not understand, and a broken request line.
      const raw = await rawSession(cli.port, { path: `/websockify?token=${unknownToken}`, headers: [`X-Token: ${unknownToken}`, 'Sec-WebSocket-Version: 99'] });
      raw.destroy();
      await new Promise((r) => setTimeout(r, 300));
      const out = cli.output();
      expect(out).to.match(/Syntax error in .* on line 2/);
      expect(out).to.match(/session 1 opened/);
      expectNotLogged(out, [token, lineToken, password, wrongPassword, unknownToken, cookieToken, bearer, quoted, quoted.slice(-16)]);
    } finally {
      await cli.stop();
    }
  });

  it('logs no Redis password from --token-source while Redis is down', async () => {
    const redisPassword = secret('REDISPW');
    const token = secret('TOKEN');
    const dead = await freePort();
    const cli = await startCli(['-v', '--token-plugin', 'TokenRedis', '--token-source', `127.0.0.1:${dead}:0:${redisPassword}:ns`], []);
    try {
      const a = await attempt(`ws://127.0.0.1:${cli.port}/?token=${token}`, {});
      expect(a.status).to.equal(503);
      await new Promise((r) => setTimeout(r, 300));
      expect(cli.output()).to.match(/unavailable/i);
      expectNotLogged(cli.output() + a.body, [redisPassword, token]);
    } finally {
      await cli.stop();
    }
  });

  it('logs no --key-password, whether it is right or wrong', async () => {
    const keyPassword = secret('KEYPW');
    const encKey = path.join(dir, 'enc.key');
    execFileSync('openssl', ['pkey', '-in', certs.serverKey, '-aes256', '-passout', `pass:${keyPassword}`, '-out', encKey]);
    const cli = await startCli(['-v', '--cert', certs.serverCert, '--key', encKey, '--key-password', keyPassword], [`127.0.0.1:${target.port}`]);
    const okOutput = cli.output();
    await cli.stop();
    expect(okOutput).to.match(/SSL\/TLS support/);
    const wrong = secret('WRONGKEYPW');
    const proc = startTsockify(['-v', '--cert', certs.serverCert, '--key', encKey, '--key-password', wrong, '127.0.0.1:0', `127.0.0.1:${target.port}`]);
    const code = await proc.exited;
    expect(code).to.equal(1);
    expect(proc.stderr()).to.match(/key-password/);
    expectNotLogged(okOutput + proc.stdout() + proc.stderr(), [keyPassword, wrong]);
  });

  it('logs no --auth-source credentials in a startup error', async () => {
    const pw = secret('STARTUPPW');
    // BasicHTTPAuth with a user name holding no colon but a broken source: no colon at all.
    const proc = startTsockify(['--auth-plugin', 'BasicHTTPAuth', '--auth-source', pw, '127.0.0.1:0', `127.0.0.1:${target.port}`]);
    expect(await proc.exited).to.not.equal(0);
    expectNotLogged(proc.stdout() + proc.stderr(), [pw]);
  });
});
