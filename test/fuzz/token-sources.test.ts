/**
 * Property-based tests of the token grammars and token formats: the TokenRedis
 * `--token-source`, TokenFile lines, TokenRedis values, the token API URL template, and the
 * tokens themselves (tsockify's signed tokens, AtmosphereToken, JWT, Basic credentials,
 * Origin). Whatever the input, a
 * parser returns a value or throws its typed error; a verifier answers a target or refuses
 * with TokenInvalidError / AuthenticationError, never anything else, and never repeats a
 * secret in a message or a log line.
 */
import { expect } from 'chai';
import type { KeyObject } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { AuthenticationError, InvalidOptionError, TokenInvalidError, type Target } from '@tsockify/core';
import {
  AtmosphereToken,
  BaseTokenAPI,
  BasicHTTPAuth,
  ExpectOrigin,
  JWTTokenApi,
  generateKey,
  keyRing,
  signToken,
  verifyToken,
  parseRedisSource,
  parseRedisValue,
  parseTokenFile,
  splitSourceFields,
} from '../../packages/auth-plugins/src/index.js';
import { captureLogger, makeContext } from '../auth-plugins/context.js';

const RUNS = { numRuns: 1000 };
const port = fc.integer({ min: 1, max: 65535 });
const plainField = fc.stringMatching(/^[A-Za-z0-9._\-]{1,10}$/);

describe('fuzz: TokenRedis --token-source grammar', () => {
  it('throws nothing but InvalidOptionError, whatever the source', () => {
    fc.assert(fc.property(fc.option(fc.string({ unit: 'binary', maxLength: 60 }), { nil: undefined }), (src) => {
      try {
        const r = parseRedisSource(src);
        expect(r.host.length).to.be.above(0);
        expect(r.port).to.be.within(1, 65535);
        expect(Number.isSafeInteger(r.db)).to.equal(true);
      } catch (err) {
        expect(err).to.be.instanceOf(InvalidOptionError);
      }
    }), RUNS);
  });

  it('round-trips host:port:db:password:namespace, quoting a field that holds colons', () => {
    const withColon = fc.stringMatching(/^[A-Za-z0-9:]{1,10}$/).filter((s) => s.includes(':'));
    fc.assert(fc.property(plainField, port, fc.nat(15), fc.oneof(plainField, withColon), fc.oneof(plainField, withColon), (host, p, db, password, ns) => {
      const q = (s: string): string => (s.includes(':') ? `"${s}"` : s);
      const r = parseRedisSource(`${host}:${p}:${db}:${q(password)}:${q(ns)}`);
      expect(r).to.deep.equal({ host, port: p, db, password, namespace: ns });
    }), RUNS);
  });

  it('splits on colons as websockify parse_source_args does: joining the fields again gives the source back when nothing is quoted', () => {
    fc.assert(fc.property(fc.string({ maxLength: 40 }).filter((s) => !s.includes('"')), (src) => {
      expect(splitSourceFields(src).join(':')).to.equal(src);
    }), RUNS);
  });

  it('never prints the password in a startup error', () => {
    const secret = fc.stringMatching(/^[A-Za-z0-9]{4,10}$/).map((s) => `pw${s}X`);
    const badTail = fc.constantFrom(':ns:extra', '', ':ns');
    const badPort = fc.constantFrom('0', '99999', 'abc', '6379');
    const badDb = fc.constantFrom('x', '-1', '0', '1.5');
    fc.assert(fc.property(secret, badPort, badDb, badTail, fc.boolean(), (pw, p, db, tail, quote) => {
      const src = `127.0.0.1:${p}:${db}:${quote ? `"${pw}"` : pw}${tail}`;
      try {
        parseRedisSource(src);
      } catch (err) {
        expect((err as Error).message, src).to.not.include(pw);
      }
    }), RUNS);
  });
});

describe('fuzz: TokenFile lines (parseTokenFile)', () => {
  const tokenText = fc.stringMatching(/^[A-Za-z0-9_\-=.+/]{1,24}$/);
  const host = fc.oneof(fc.domain(), fc.ipV4(), fc.ipV6());

  it('never throws, and logs a syntax error without the text of the line', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (text) => {
      const log = captureLogger();
      const table = parseTokenFile(text, '/etc/tokens', log);
      expect(table).to.be.instanceOf(Map);
      for (const r of log.records) {
        expect(r.msg).to.match(/^Syntax error in \/etc\/tokens on line \d+$/);
        expect(Object.keys(r.obj).sort()).to.deep.equal(['file', 'line']);
      }
    }), RUNS);
  });

  it('reads back every well-formed line, the last line for a token winning, with any one white space after the colon', () => {
    const line = fc.tuple(tokenText, host, port, fc.constantFrom(' ', '\t'));
    fc.assert(fc.property(fc.array(line, { maxLength: 12 }), fc.constantFrom('\n', '\r\n', '\r'), (lines, nl) => {
      const noise = ['# a comment: not: a line', '', '   ', 'bad line without separator'];
      const text = [...noise, ...lines.map(([t, h, p, ws]) => `${t}:${ws}${h.includes(':') ? `[${h}]` : h}:${p}`)].join(nl);
      const table = parseTokenFile(text, 'f', captureLogger());
      const expected = new Map<string, Target>();
      for (const [t, h, p] of lines) expected.set(t, { host: h, port: p });
      expect(table).to.deep.equal(expected);
    }), { numRuns: 500 });
  });

  it('refuses a line where the separator ": " occurs twice (websockify re.split rule)', () => {
    fc.assert(fc.property(tokenText, plainField, port, (t, h, p) => {
      const log = captureLogger();
      expect(parseTokenFile(`${t}: x: ${h}:${p}`, 'f', log).size).to.equal(0);
      expect(log.records).to.have.length(1);
    }), { numRuns: 200 });
  });
});

describe('fuzz: TokenRedis values (parseRedisValue)', () => {
  it('returns a target or throws an Error (never a non-Error, never a target without host or port)', () => {
    const json = fc.jsonValue().map((v) => JSON.stringify(v));
    const hostish = fc.record({ host: fc.oneof(fc.string(), fc.integer(), fc.constant(null)), port: fc.oneof(fc.string(), fc.integer(), fc.constant(undefined)) }).map((o) => JSON.stringify(o));
    fc.assert(fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 60 }), json, hostish), (raw) => {
      try {
        const t = parseRedisValue(raw) as { host?: string; port?: number; unixSocket?: string };
        if (t.unixSocket === undefined) {
          expect(t.host!.length).to.be.above(0);
          expect(t.port).to.be.within(1, 65535);
        }
      } catch (err) {
        expect(err).to.be.instanceOf(Error);
      }
    }), RUNS);
  });
});

describe('fuzz: BaseTokenAPI URL template', () => {
  it('keeps any token inside its path segment: the scheme, host and the rest of the URL never change', async () => {
    const api = await BaseTokenAPI.fromSource('http://127.0.0.1:8000/token/%s/target?x=1');
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (tok) => {
      const u = new URL(api.urlFor(tok));
      expect(u.origin).to.equal('http://127.0.0.1:8000');
      expect(u.search).to.equal('?x=1');
      expect(u.hash).to.equal('');
      const m = /^\/token\/([^/]*)\/target$/.exec(u.pathname);
      expect(m, u.pathname).to.not.equal(null);
      // WHATWG URL may re-encode, but never turns the token into more than one segment.
    }), RUNS);
  });
});

describe('fuzz: token and credential formats', () => {
  let dir: string;
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsockify-fuzz-tokens-')); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  describe('AtmosphereToken', () => {
    // The test vector of web-desktop.md.
    const VECTOR = 'WyIxMC4wLjAuNSJd.F9eEAA.7cL4OIAReFOuQgZu9WAMUG-RCkE';
    const plugin = (): AtmosphereToken => new AtmosphereToken({
      secret: 'secrets-things-that-arenot-so-secret',
      salt: 'i-like-the-idea-of-a-salt',
      port: 5902,
      now: () => (400000000 + 1293840000 + 10) * 1000,
    });

    it('accepts the test vector', () => {
      expect(plugin().lookup(VECTOR)).to.deep.equal({ host: '10.0.0.5', port: 5902 });
    });

    it('refuses random strings with TokenInvalidError only', () => {
      const p = plugin();
      const b64 = fc.stringMatching(/^[A-Za-z0-9_-]{0,30}$/);
      const shaped = fc.tuple(b64, b64, b64).map(([a, b, c]) => `${a}.${b}.${c}`);
      fc.assert(fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 80 }), shaped), (tok) => {
        expect(() => p.lookup(tok)).to.throw(TokenInvalidError);
      }), RUNS);
    });

    it('refuses every one-character change to a valid token, except the signature\'s unused base64 bits', () => {
      const p = plugin();
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=';
      fc.assert(fc.property(fc.nat(VECTOR.length - 1), fc.constantFrom(...alphabet), fc.constantFrom('replace', 'insert', 'delete'), (i, c, op) => {
        const mutated = op === 'replace' ? VECTOR.slice(0, i) + c + VECTOR.slice(i + 1)
          : op === 'insert' ? VECTOR.slice(0, i) + c + VECTOR.slice(i)
            : VECTOR.slice(0, i) + VECTOR.slice(i + 1);
        if (mutated === VECTOR) return;
        let accepted = false;
        try {
          p.lookup(mutated);
          accepted = true;
        } catch (err) {
          expect(err).to.be.instanceOf(TokenInvalidError);
        }
        if (accepted) {
          // Base64 malleability only: the same signature bytes written another way (the last
          // character carries 2 unused bits). The signed part must be untouched.
          const sig = mutated.slice(mutated.lastIndexOf('.') + 1);
          expect(mutated.slice(0, mutated.lastIndexOf('.'))).to.equal(VECTOR.slice(0, VECTOR.lastIndexOf('.')));
          expect(Buffer.from(sig, 'base64url').equals(Buffer.from(VECTOR.slice(VECTOR.lastIndexOf('.') + 1), 'base64url'))).to.equal(true);
        }
      }), RUNS);
    });
  });

  describe('SignedToken (v1.kid.claims.signature)', () => {
    const now = Date.UTC(2026, 0, 1);
    const hs = generateKey('hs1', 'HS256');
    const ed = generateKey('ed1', 'Ed25519');
    const ring = keyRing([hs, ed]);
    const claimsArb = fc.record({
      host: fc.oneof(fc.domain(), fc.ipV4(), fc.ipV6()),
      port: fc.integer({ min: 1, max: 65535 }),
      sub: fc.option(fc.string({ minLength: 1, maxLength: 20 }), { nil: undefined }),
      iid: fc.option(fc.string({ minLength: 1, maxLength: 20 }), { nil: undefined }),
      ttlSec: fc.integer({ min: 1, max: 3600 }),
    });

    it('verifies what it signs, with either algorithm, claims intact', () => {
      fc.assert(fc.property(claimsArb, fc.constantFrom(hs, ed), (c, key) => {
        const input = { host: c.host, port: c.port, ttlSec: c.ttlSec, ...(c.sub !== undefined ? { sub: c.sub } : {}), ...(c.iid !== undefined ? { iid: c.iid } : {}) };
        const token = signToken(input, key, { now });
        const v = verifyToken(token, ring, { now });
        expect(v.kid).to.equal(key.kid);
        expect(v.claims).to.deep.include({ host: c.host, port: c.port });
        if (c.sub !== undefined) expect(v.claims.sub).to.equal(c.sub);
        if (c.iid !== undefined) expect(v.claims.iid).to.equal(c.iid);
      }), { numRuns: 300 });
    });

    it('refuses random and token-shaped strings with TokenInvalidError only', () => {
      const b64 = fc.stringMatching(/^[A-Za-z0-9_-]{0,60}$/);
      const shaped = fc.tuple(fc.constantFrom('v1', 'v2', 'V1', ''), fc.constantFrom('hs1', 'ed1', 'nope', '', 'a.b'), b64, b64)
        .map(([v, k, c, s]) => `${v}.${k}.${c}.${s}`);
      const forgedClaims = fc.tuple(fc.constantFrom('hs1', 'ed1'), fc.jsonValue(), b64)
        .map(([k, c, s]) => `v1.${k}.${Buffer.from(JSON.stringify(c)).toString('base64url')}.${s}`);
      fc.assert(fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 80 }), shaped, forgedClaims), (tok) => {
        expect(() => verifyToken(tok, ring, { now })).to.throw(TokenInvalidError);
      }), RUNS);
    });

    it('refuses every one-character change, except spellings of the same signature bytes (same jti: one-time use unaffected)', () => {
      const token = signToken({ host: '10.0.0.5', port: 5901, sub: 'alice', ttlSec: 600 }, hs, { now });
      const edToken = signToken({ host: '10.0.0.5', port: 5901, sub: 'alice', ttlSec: 600 }, ed, { now });
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=';
      fc.assert(fc.property(fc.constantFrom(token, edToken), fc.nat(400), fc.constantFrom(...alphabet), fc.constantFrom('replace', 'insert', 'delete'), (t, at, c, op) => {
        const i = at % t.length;
        const mutated = op === 'replace' ? t.slice(0, i) + c + t.slice(i + 1) : op === 'insert' ? t.slice(0, i) + c + t.slice(i) : t.slice(0, i) + t.slice(i + 1);
        if (mutated === t) return;
        let accepted: ReturnType<typeof verifyToken> | undefined;
        try {
          accepted = verifyToken(mutated, ring, { now });
        } catch (err) {
          expect(err).to.be.instanceOf(TokenInvalidError);
        }
        if (accepted) {
          const cut = (s: string): string => s.slice(0, s.lastIndexOf('.'));
          expect(cut(mutated), 'the signed part is untouched').to.equal(cut(t));
          expect(accepted.claims.jti).to.equal(verifyToken(t, ring, { now }).claims.jti);
        }
      }), RUNS);
    });

    it('refuses an HMAC forged with the Ed25519 public key as its secret (the key picks the algorithm, not the token)', () => {
      const pub = (ed as { publicKey: KeyObject }).publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
      for (const secret of [pub.toString('base64url'), pub.toString('hex'), pub.toString('latin1').padEnd(32, 'x')]) {
        const forged = signToken({ host: 'evil.example', port: 22, ttlSec: 60 }, { kid: 'ed1', secret: Buffer.from(secret) }, { now });
        expect(() => verifyToken(forged, ring, { now })).to.throw(TokenInvalidError, /signature/);
      }
    });
  });

  describe('JWTTokenApi', () => {
    it('refuses random and JWT-shaped strings with TokenInvalidError only, logging no token', async () => {
      const keyFile = path.join(dir, 'hs.key');
      fs.writeFileSync(keyFile, Buffer.from('a-secret-of-thirty-two-bytes-ok!').toString('base64url'));
      const log = captureLogger();
      const p = await JWTTokenApi.fromSource(keyFile, { logger: log });
      const seg = fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{0,40}$/), fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v)).toString('base64url')));
      const shaped = fc.array(seg, { minLength: 1, maxLength: 6 }).map((s) => s.join('.'));
      const header = fc.constantFrom('none', 'HS256', 'RS256', 'ES256', 'EdDSA', 'PS512', 'RSA-OAEP', 'dir').map((alg) => Buffer.from(JSON.stringify({ alg, typ: 'JWT' })).toString('base64url'));
      const forged = fc.tuple(header, seg, seg).map(([h, b, s]) => `${h}.${b}.${s}`);
      await fc.assert(fc.asyncProperty(fc.oneof(fc.string({ unit: 'binary', maxLength: 60 }), shaped, forged), async (tok) => {
        try {
          await p.lookup(tok, makeContext({ log }));
          expect.fail(`accepted ${tok}`);
        } catch (err) {
          expect(err, String(err)).to.be.instanceOf(TokenInvalidError);
          if (tok.length >= 8) expect(log.text()).to.not.include(tok);
        }
      }), { numRuns: 500 });
    });
  });

  describe('BasicHTTPAuth', () => {
    it('answers any Authorization header with pass, 401 or 403, and passes only the exact credentials', () => {
      const auth = new BasicHTTPAuth({ user: 'alice', password: 'pw:with:colons' });
      const good = `Basic ${Buffer.from('alice:pw:with:colons').toString('base64')}`;
      const header = fc.oneof(
        fc.string({ unit: 'binary', maxLength: 60 }),
        fc.tuple(fc.constantFrom('Basic ', 'basic ', 'BASIC ', 'Bearer ', 'Basic  ', ''), fc.string({ unit: 'binary', maxLength: 30 }))
          .map(([s, c]) => `${s}${Buffer.from(c, 'latin1').toString('base64')}`),
        fc.tuple(fc.nat(good.length), fc.string({ minLength: 1, maxLength: 1 })).map(([i, c]) => good.slice(0, i) + c + good.slice(i + 1)),
      );
      fc.assert(fc.property(header, (h) => {
        let passed = false;
        try {
          auth.authenticate(makeContext({ headers: { authorization: h } }));
          passed = true;
        } catch (err) {
          expect(err).to.be.instanceOf(AuthenticationError);
          expect([401, 403]).to.include((err as AuthenticationError).status);
          expect((err as Error).message).to.not.include('pw:with:colons');
        }
        if (passed) {
          const creds = Buffer.from(h.replace(/^basic\s+/i, '').trim(), 'base64').toString('latin1');
          expect(creds).to.equal('alice:pw:with:colons');
        }
      }), RUNS);
    });
  });

  describe('ExpectOrigin', () => {
    it('passes only an Origin equal to a configured one (no prefix, suffix, case or port games)', () => {
      const allowed = ['https://portal.example.org', 'http://127.0.0.1:8080'];
      const plugin = ExpectOrigin.fromSource(allowed.join(' '));
      const near = fc.tuple(fc.constantFrom(...allowed), fc.constantFrom('', '/', '.', '.evil.com', ':443', ':8081', '@evil.com', '%00', ' ', '\t', '#')).map(([o, s]) => o + s);
      const cased = fc.constantFrom(...allowed).map((o) => o.toUpperCase());
      const origin = fc.oneof(fc.string({ maxLength: 40 }), fc.webUrl(), near, cased, fc.constantFrom('null', 'file://', 'https://evil.example'));
      fc.assert(fc.property(fc.option(origin, { nil: undefined }), (o) => {
        const ctx = makeContext({ headers: o === undefined ? {} : { origin: o } });
        if (o !== undefined && allowed.includes(o)) {
          expect(() => plugin.authenticate(ctx)).to.not.throw();
        } else {
          expect(() => plugin.authenticate(ctx)).to.throw(AuthenticationError, 'Invalid Origin');
        }
      }), RUNS);
    });
  });
});
