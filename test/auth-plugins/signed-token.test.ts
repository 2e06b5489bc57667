import { createHmac } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { InvalidOptionError, PluginUnavailableError, TokenInvalidError } from '@tsockify/core';
import {
  MemoryReplayCache,
  SignedToken,
  SignedTokenError,
  createTokenPlugin,
  decodeTokenUnverified,
  formatKeyLine,
  generateKey,
  loadKeyRing,
  parseKeyFile,
  signToken,
  verifyToken,
  type SignedTokenFailure,
  type SignedTokenKey,
} from '../../packages/auth-plugins/src/index.js';
import { captureLogger, makeContext } from './context.js';
import { tempDir } from './tmp.js';

const SECRET_LINE = 'portal-1: hs256:0123456789abcdef0123456789abcdef';
const ring = (...lines: string[]): Map<string, SignedTokenKey> => {
  const { keys, errors } = parseKeyFile(lines.join('\n'));
  expect(errors).to.deep.equal([]);
  return keys;
};
const NOW = Date.UTC(2025, 0, 1, 12, 0, 0);
const NOW_S = NOW / 1000;

function failure(fn: () => unknown): SignedTokenError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(SignedTokenError);
    expect(err).to.be.instanceOf(TokenInvalidError);
    return err as SignedTokenError;
  }
  return expect.fail('expected a SignedTokenError');
}

/** Sign arbitrary claims the way the format says, bypassing signToken's own checks. */
function rawToken(claims: unknown, kid = 'portal-1', secret = '0123456789abcdef0123456789abcdef'): string {
  const input = `v1.${kid}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

describe('SignedToken', () => {
  describe('#signToken / #verifyToken', () => {
    it('round-trips every claim with HMAC-SHA256 and fills in jti and iat', () => {
      const token = signToken({ host: '10.0.0.5', port: 5901, sub: 'alice', iid: 'i-42', ttlSec: 120 }, SECRET_LINE, { now: NOW });
      expect(token).to.match(/^v1\.portal-1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
      const v = verifyToken(token, ring(SECRET_LINE), { now: NOW + 1000 });
      expect(v.kid).to.equal('portal-1');
      expect(v.alg).to.equal('HS256');
      expect(v.claims).to.include({ host: '10.0.0.5', port: 5901, sub: 'alice', iid: 'i-42', iat: NOW_S, exp: NOW_S + 120 });
      expect(v.claims.jti).to.match(/^[A-Za-z0-9_-]{22}$/);
      expect(signToken({ host: 'h', port: 1, ttlSec: 1 }, SECRET_LINE)).to.not.equal(signToken({ host: 'h', port: 1, ttlSec: 1 }, SECRET_LINE));
    });

    it('takes the key as a line, as { kid, secret } or parsed, and IPv6 hosts without brackets', () => {
      const a = signToken({ host: '::1', port: 5901, jti: 'j', iat: NOW_S, exp: NOW_S + 60 }, SECRET_LINE);
      const b = signToken({ host: '::1', port: 5901, jti: 'j', iat: NOW_S, exp: NOW_S + 60 }, { kid: 'portal-1', secret: '0123456789abcdef0123456789abcdef' });
      const c = signToken({ host: '::1', port: 5901, jti: 'j', iat: NOW_S, exp: NOW_S + 60 }, ring(SECRET_LINE).get('portal-1')!);
      expect(a).to.equal(b).and.to.equal(c);
      expect(verifyToken(a, ring(SECRET_LINE), { now: NOW }).claims.host).to.equal('::1');
    });

    it('verifies Ed25519 tokens with the public key alone, which cannot mint', () => {
      const key = generateKey('ed-1', 'Ed25519');
      const publicLine = formatKeyLine(key, true);
      expect(publicLine).to.match(/^ed-1: ed25519:[A-Za-z0-9_-]{43}$/);
      const token = signToken({ host: 'desk.example', port: 5902, ttlSec: 60 }, formatKeyLine(key), { now: NOW });
      expect(token.split('.')[3]).to.have.length(86); // 64 bytes
      const verifier = ring(publicLine);
      expect(verifyToken(token, verifier, { now: NOW }).alg).to.equal('Ed25519');
      expect(() => signToken({ host: 'h', port: 1, ttlSec: 60 }, verifier.get('ed-1')!)).to.throw(InvalidOptionError, /cannot sign/);
      const other = generateKey('ed-1', 'Ed25519');
      expect(failure(() => verifyToken(token, ring(formatKeyLine(other, true)), { now: NOW })).failure).to.equal('bad-signature');
    });

    it('chooses the algorithm by the key, never the token: an HMAC token under an Ed25519 kid fails', () => {
      const ed = generateKey('portal-1', 'Ed25519');
      const token = signToken({ host: 'h', port: 1, ttlSec: 60 }, SECRET_LINE, { now: NOW });
      expect(failure(() => verifyToken(token, ring(formatKeyLine(ed, true)), { now: NOW })).failure).to.equal('bad-signature');
    });

    it('refuses a token whose any byte was changed (tampered)', () => {
      const token = signToken({ host: '10.0.0.5', port: 5901, ttlSec: 60 }, SECRET_LINE, { now: NOW });
      const parts = token.split('.');
      const claims = JSON.parse(Buffer.from(parts[2]!, 'base64url').toString()) as Record<string, unknown>;
      claims['host'] = '10.0.0.6';
      const forged = [parts[0], parts[1], Buffer.from(JSON.stringify(claims)).toString('base64url'), parts[3]].join('.');
      const e = failure(() => verifyToken(forged, ring(SECRET_LINE), { now: NOW }));
      expect(e.failure).to.equal('bad-signature');
      expect(e.message).to.equal('token signature invalid');
      for (let i = 0; i < token.length; i += 7) {
        const c = token[i] === 'A' ? 'B' : 'A';
        const t = token.slice(0, i) + c + token.slice(i + 1);
        if (t === token) continue;
        expect(() => verifyToken(t, ring(SECRET_LINE), { now: NOW }), `byte ${i}`).to.throw(SignedTokenError);
      }
    });

    it('says how long ago an expired token expired', () => {
      const token = signToken({ host: 'h', port: 1, iat: NOW_S - 600, exp: NOW_S - 125 }, SECRET_LINE);
      const e = failure(() => verifyToken(token, ring(SECRET_LINE), { now: NOW }));
      expect(e.failure).to.equal('expired');
      expect(e.message).to.equal('token expired');
      expect(e.detail).to.equal('expired 2m 5s ago (exp 2025-01-01T11:57:55Z, now 2025-01-01T12:00:00Z)');
    });

    it('names the missing or invalid claim', () => {
      const full = { host: 'h', port: 5901, jti: 'j', iat: NOW_S, exp: NOW_S + 60 };
      for (const claim of ['host', 'port', 'jti', 'iat', 'exp'] as const) {
        const { [claim]: _gone, ...rest } = full;
        const e = failure(() => verifyToken(rawToken(rest), ring(SECRET_LINE), { now: NOW }));
        expect(e.failure, claim).to.equal('missing-claim');
        expect(e.claim).to.equal(claim);
        expect(e.message).to.equal(`token has no ${claim} claim`);
      }
      const invalid: Array<[Record<string, unknown>, string]> = [
        [{ ...full, port: 70000 }, 'port'],
        [{ ...full, port: '5901' }, 'port'],
        [{ ...full, host: '[::1]' }, 'host'],
        [{ ...full, host: 'a b' }, 'host'],
        [{ ...full, exp: 1.5 }, 'exp'],
        [{ ...full, sub: 42 }, 'sub'],
        [{ ...full, exp: NOW_S - 10, iat: NOW_S }, 'exp'],
      ];
      for (const [claims, claim] of invalid) {
        const e = failure(() => verifyToken(rawToken(claims), ring(SECRET_LINE), { now: NOW }));
        expect(e.failure, JSON.stringify(claims)).to.equal('invalid-claim');
        expect(e.claim).to.equal(claim);
      }
      const noSub = failure(() => verifyToken(rawToken(full), ring(SECRET_LINE), { now: NOW, requireClaims: ['sub'] }));
      expect(noSub.message).to.equal('token has no sub claim');
    });

    it('refuses lifetimes beyond the maximum, even with iat set back, and iat from the future', () => {
      const long = signToken({ host: 'h', port: 1, iat: NOW_S, exp: NOW_S + 3601 }, SECRET_LINE);
      expect(failure(() => verifyToken(long, ring(SECRET_LINE), { now: NOW, maxLifetimeSec: 3600 })).failure).to.equal('lifetime-too-long');
      expect(verifyToken(long, ring(SECRET_LINE), { now: NOW, maxLifetimeSec: 3601 }).claims.exp).to.equal(NOW_S + 3601);
      const backdated = rawToken({ host: 'h', port: 1, jti: 'j', iat: NOW_S + 7200 - 3600, exp: NOW_S + 7200 });
      expect(verifyToken(backdated, ring(SECRET_LINE), { now: NOW + 3600_000, maxLifetimeSec: 3600 }).claims.jti).to.equal('j');
      const future = signToken({ host: 'h', port: 1, iat: NOW_S + 300, exp: NOW_S + 360 }, SECRET_LINE);
      const e = failure(() => verifyToken(future, ring(SECRET_LINE), { now: NOW }));
      expect(e.failure).to.equal('issued-in-future');
      expect(e.detail).to.match(/5m ahead of this clock/);
      expect(verifyToken(future, ring(SECRET_LINE), { now: NOW, clockSkewSec: 300 }).claims.iat).to.equal(NOW_S + 300);
    });

    it('explains malformed tokens, versions and unknown key ids', () => {
      const cases: Array<[string, SignedTokenFailure, RegExp]> = [
        ['garbage', 'malformed', /expected 4 dot-separated parts/],
        ['a.b.c', 'malformed', /a JWT\? use JWTTokenApi/],
        ['v2.k.e30.AAAA', 'unsupported-version', /starts with "v2"/],
        ['v1.k!.e30.AAAA', 'malformed', /key id/],
        ['v1.portal-1.e30=.AAAA', 'malformed', /not base64url/],
        ['v1.nobody.e30.AAAA', 'unknown-kid', /key id "nobody" is not in the key ring \(known: portal-1\)/],
        [`v1.portal-1.${'A'.repeat(5000)}.AAAA`, 'malformed', /at most 4096/],
      ];
      for (const [token, code, detail] of cases) {
        const e = failure(() => verifyToken(token, ring(SECRET_LINE), { now: NOW }));
        expect(e.failure, token.slice(0, 20)).to.equal(code);
        expect(e.detail).to.match(detail);
      }
      const notJson = rawToken('x').replace(/^v1\.portal-1\.[^.]+/, (m) => m); // a JSON string, not an object
      expect(failure(() => verifyToken(notJson, ring(SECRET_LINE), { now: NOW })).detail).to.match(/not a JSON object/);
      expect(decodeTokenUnverified(rawToken({ a: 1 }))).to.deep.equal({ kid: 'portal-1', claims: { a: 1 } });
    });

    it('refuses to sign a token without an expiry or with bad claims', () => {
      expect(() => signToken({ host: 'h', port: 1 }, SECRET_LINE)).to.throw(/give exp or ttlSec/);
      expect(() => signToken({ host: 'h', port: 0, ttlSec: 1 }, SECRET_LINE)).to.throw(/port/);
      expect(() => signToken({ host: 'h', port: 1, ttlSec: 1 }, 'k: hs256:short')).to.throw(/at least 32/);
    });
  });

  describe('keys files', () => {
    it('reports every bad line by file and number, never the secret', () => {
      const { keys, errors } = parseKeyFile([
        '# comment',
        'good: hs256:0123456789abcdef0123456789abcdef',
        'short: hs256:tooshortsecretvalue',
        'nospace:hs256:0123456789abcdef0123456789abcdef',
        'good: hs256:fedcba9876543210fedcba9876543210',
        'ed: ed25519:AAAA',
        'what: rsa:xyz',
      ].join('\n'), 'k.keys');
      expect([...keys.keys()]).to.deep.equal(['good']);
      expect(errors).to.have.length(5);
      expect(errors[0]).to.match(/^k\.keys line 3: .*at least 32/);
      expect(errors[1]).to.match(/^k\.keys line 4: expected "kid: TYPE:DATA"/);
      expect(errors[2]).to.match(/line 5: key id "good" is given twice/);
      expect(errors.join('\n')).to.not.include('tooshortsecretvalue').and.not.include('fedcba98');
    });
  });

  describe('plugin', () => {
    let dir: string;
    let cleanup: () => Promise<void>;
    const plugins: SignedToken[] = [];
    beforeEach(async () => ({ dir, cleanup } = await tempDir()));
    afterEach(async () => {
      for (const p of plugins.splice(0)) await p.close();
      await cleanup();
    });
    const make = async (source: string, settings = {}): Promise<SignedToken> => {
      const p = await SignedToken.fromSource(source, settings);
      plugins.push(p);
      return p;
    };

    it('returns the target, sub/iid/jti in meta and the expiry, so the core ends the session then', async () => {
      await writeFile(path.join(dir, 'keys'), `${SECRET_LINE}\n`);
      const p = await make(path.join(dir, 'keys'));
      const token = signToken({ host: '10.0.0.5', port: 5901, sub: 'alice', iid: 'i-42', jti: 'tok-1', ttlSec: 60 }, SECRET_LINE);
      const t = await p.lookup(token, makeContext({ token }));
      expect(t).to.deep.include({ host: '10.0.0.5', port: 5901 });
      expect(t.meta).to.deep.equal({ jti: 'tok-1', kid: 'portal-1', sub: 'alice', iid: 'i-42' });
      expect(t.expiresAt! - Date.now()).to.be.within(58_000, 60_000);
    });

    it('rotates keys without a restart: a key added to the directory works at once, a removed one fails', async () => {
      const keysDir = path.join(dir, 'keys.d');
      await mkdir(keysDir);
      const oldKey = generateKey('2024', 'HS256');
      const newKey = generateKey('2025', 'Ed25519');
      await writeFile(path.join(keysDir, '2024.keys'), `${formatKeyLine(oldKey)}\n`);
      await writeFile(path.join(keysDir, '.hidden'), 'not a keys file');
      const p = await make(keysDir);
      const newToken = signToken({ host: 'h', port: 1, ttlSec: 60 }, newKey);
      const oldToken = signToken({ host: 'h', port: 1, ttlSec: 60 }, oldKey);
      expect((await p.lookup(oldToken, makeContext())).host).to.equal('h');
      await expectFailure(p.lookup(newToken, makeContext()), 'unknown-kid');
      await writeFile(path.join(keysDir, '2025.keys'), `${formatKeyLine(newKey, true)}\n`);
      expect((await p.lookup(newToken, makeContext())).host).to.equal('h');
      await rename(path.join(keysDir, '2024.keys'), path.join(keysDir, '.2024.retired'));
      await expectFailure(p.lookup(oldToken, makeContext()), 'unknown-kid');
    });

    it('skips a bad line written while running (logged once), keeping the other keys', async () => {
      const file = path.join(dir, 'keys');
      await writeFile(file, `${SECRET_LINE}\n`);
      const log = captureLogger();
      const p = await SignedToken.fromSource(file, { logger: log });
      plugins.push(p);
      await writeFile(file, `${SECRET_LINE}\nbroken line here\n`);
      const token = signToken({ host: 'h', port: 1, ttlSec: 60 }, SECRET_LINE);
      for (let i = 0; i < 3; i++) expect((await p.lookup(token)).host).to.equal('h');
      expect(log.records.filter((r) => r.msg.includes('line 2'))).to.have.length(1);
    });

    it('answers 503 (PluginUnavailableError) when the keys vanish, and recovers when they return', async () => {
      const file = path.join(dir, 'keys');
      await writeFile(file, `${SECRET_LINE}\n`);
      const p = await make(file);
      const token = signToken({ host: 'h', port: 1, ttlSec: 60 }, SECRET_LINE);
      await rename(file, `${file}.away`);
      const err = await p.lookup(token).then(() => expect.fail('expected a rejection'), (e: unknown) => e);
      expect(err).to.be.instanceOf(PluginUnavailableError);
      await rename(`${file}.away`, file);
      expect((await p.lookup(token)).host).to.equal('h');
    });

    it('opens one session per token id with "once", but lets the exchange cookie through (tokenSource cookie)', async () => {
      await writeFile(path.join(dir, 'keys'), `${SECRET_LINE}\n`);
      const p = await make(`${path.join(dir, 'keys')}::once`);
      expect(p.replay).to.be.instanceOf(MemoryReplayCache);
      const token = signToken({ host: 'h', port: 1, ttlSec: 60 }, SECRET_LINE);
      await p.lookup(token, makeContext({ token }));
      const e = await expectFailure(p.lookup(token, makeContext({ token })), 'replayed');
      expect(e.message).to.equal('token already used');
      const fromCookie = { ...makeContext({ token }), tokenSource: 'cookie' as const };
      expect((await p.lookup(token, fromCookie)).host).to.equal('h');
      // A bad token never reaches the replay memory.
      await expectFailure(p.lookup(`${token}x`, makeContext()), 'bad-signature');
    });

    it('forgets used token ids once they expire (bounded memory)', () => {
      let now = 1_000_000;
      const cache = new MemoryReplayCache({ now: () => now, maxEntries: 2 });
      expect(cache.claim('a', now + 1000)).to.equal(true);
      expect(cache.claim('a', now + 1000)).to.equal(false);
      expect(cache.claim('b', now + 5000)).to.equal(true);
      expect(() => cache.claim('c', now + 5000)).to.throw(PluginUnavailableError, /memory full/);
      now += 2000; // 'a' has expired: its slot is free again
      expect(cache.claim('c', now + 5000)).to.equal(true);
      expect(cache.size).to.equal(2);
      now += 10_000;
      expect(cache.claim('a', now + 1000)).to.equal(true);
      expect(cache.size).to.equal(1);
    });

    it('reads the max lifetime from the source and refuses bad sources at startup, naming the grammar', async () => {
      const file = path.join(dir, 'keys');
      await writeFile(file, `${SECRET_LINE}\n`);
      const p = await make(`${file}:60`);
      const token = signToken({ host: 'h', port: 1, ttlSec: 61 }, SECRET_LINE);
      await expectFailure(p.lookup(token), 'lifetime-too-long');
      const bad: Array<[string | undefined, RegExp]> = [
        [undefined, /SignedToken needs --token-source/],
        [path.join(dir, 'missing'), /no such file or directory/],
        [`${file}:abc`, /max lifetime "abc"/],
        [`${file}:60:twice`, /"twice" is not "once" or "reuse"/],
        [`${file}:60:reuse:redis`, /only for "once"/],
        [`${file}:60:once:h:notaport`, /Redis address/],
      ];
      for (const [source, re] of bad) {
        const err = await createTokenPlugin('SignedToken', source).then(() => expect.fail(String(source)), (e: unknown) => e as Error);
        expect(err, String(source)).to.be.instanceOf(InvalidOptionError);
        expect(err.message).to.match(re).and.to.include('SignedToken expects keys[:max_lifetime_seconds[:once');
      }
      await writeFile(path.join(dir, 'bad'), 'k: hs256:short\n');
      const err = await createTokenPlugin('SignedToken', path.join(dir, 'bad')).then(() => expect.fail('bad keys'), (e: unknown) => e as Error);
      expect(err.message).to.match(/bad line 1: .*at least 32/);
      await writeFile(path.join(dir, 'empty'), '# nothing\n');
      await expectRejects(loadKeyRing(path.join(dir, 'empty')), /no keys in/);
    });
  });
});

async function expectFailure(p: Promise<unknown>, code: SignedTokenFailure): Promise<SignedTokenError> {
  const err = await p.then(() => expect.fail(`expected ${code}`), (e: unknown) => e);
  expect(err).to.be.instanceOf(SignedTokenError);
  expect((err as SignedTokenError).failure).to.equal(code);
  return err as SignedTokenError;
}

async function expectRejects(p: Promise<unknown>, re: RegExp): Promise<void> {
  const err = await p.then(() => expect.fail('expected a rejection'), (e: unknown) => e as Error);
  expect(err.message).to.match(re);
}
