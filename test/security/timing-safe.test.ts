/**
 * Timing-safe comparisons, checked by behaviour: `crypto.timingSafeEqual` is replaced by a
 * recording wrapper (node:crypto's ESM named exports follow `module.syncBuiltinESMExports()`),
 * and each verifier (BasicHTTPAuth, AtmosphereToken, tsockify's signed tokens) must call it for
 * every secret it compares, on equal-length inputs, whatever
 * the guess (so the length or a prefix of the secret never decides how long a check takes).
 * websockify compares Basic credentials with `==`.
 */
import { expect } from 'chai';
import crypto from 'node:crypto';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import fc from 'fast-check';
import { AuthenticationError, TokenInvalidError } from '@tsockify/core';
import { AtmosphereToken, BasicHTTPAuth, generateKey, keyRing, signToken, verifyToken } from '../../packages/auth-plugins/src/index.js';
import { makeContext } from '../auth-plugins/context.js';

const cjsCrypto = createRequire(import.meta.url)('node:crypto') as typeof crypto;

interface Call { a: number; b: number }

describe('security: timing-safe comparisons', () => {
  const calls: Call[] = [];
  let original: typeof crypto.timingSafeEqual;

  before(() => {
    original = cjsCrypto.timingSafeEqual;
    cjsCrypto.timingSafeEqual = ((a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
      calls.push({ a: a.byteLength, b: b.byteLength });
      return original(a, b);
    }) as typeof crypto.timingSafeEqual;
    syncBuiltinESMExports();
  });
  after(() => {
    cjsCrypto.timingSafeEqual = original;
    syncBuiltinESMExports();
  });
  beforeEach(() => { calls.length = 0; });

  it('the recording wrapper is what ESM importers of node:crypto see', () => {
    crypto.timingSafeEqual(Buffer.alloc(1), Buffer.alloc(1));
    expect(calls).to.have.length(1);
  });

  describe('BasicHTTPAuth', () => {
    const auth = new BasicHTTPAuth({ user: 'alice', password: 'correct horse battery staple' });
    const header = (creds: string): string => `Basic ${Buffer.from(creds, 'utf8').toString('base64')}`;

    it('compares every guess with timingSafeEqual on equal-length digests, whatever its length or prefix', () => {
      const guess = fc.oneof(
        fc.string({ maxLength: 80 }).map((s) => `alice:${s}`),
        fc.string({ maxLength: 80 }).map((s) => `${s}:x`),
        fc.nat(27).map((n) => `alice:${'correct horse battery staple'.slice(0, n)}`),
      );
      fc.assert(fc.property(guess, (g) => {
        calls.length = 0;
        let ok = false;
        try {
          auth.authenticate(makeContext({ headers: { authorization: header(g) } }));
          ok = true;
        } catch (err) {
          expect(err).to.be.instanceOf(AuthenticationError);
        }
        expect(ok).to.equal(g === 'alice:correct horse battery staple');
        expect(calls.length, `guess ${JSON.stringify(g)}`).to.be.at.least(1);
        for (const c of calls) expect(c.a).to.equal(c.b);
        // Same work for every guess: one comparison per accepted encoding of the secret.
        expect(calls.length).to.equal(2);
      }), { numRuns: 500 });
    });

    it('does the same work for a right user with a wrong password as for a wrong user', () => {
      const count = (creds: string): number => {
        calls.length = 0;
        try { auth.authenticate(makeContext({ headers: { authorization: header(creds) } })); } catch { /* refused */ }
        return calls.length;
      };
      expect(count('alice:wrong')).to.equal(count('mallory:wrong'));
      expect(count('alice:correct horse battery stapl')).to.equal(count('a:b'));
    });
  });

  describe('AtmosphereToken', () => {
    const plugin = new AtmosphereToken({
      secret: 'secrets-things-that-arenot-so-secret',
      salt: 'i-like-the-idea-of-a-salt',
      port: 5902,
      now: () => (400000000 + 1293840000 + 10) * 1000,
    });
    const VECTOR = 'WyIxMC4wLjAuNSJd.F9eEAA.7cL4OIAReFOuQgZu9WAMUG-RCkE';

    it('checks a well-formed signature with timingSafeEqual, wrong in its first or its last byte alike', () => {
      const sig = Buffer.from(VECTOR.split('.')[2]!, 'base64url');
      for (const i of [0, sig.length - 1]) {
        const bad = Buffer.from(sig);
        bad[i] = bad[i]! ^ 1;
        calls.length = 0;
        expect(() => plugin.lookup(`${VECTOR.split('.').slice(0, 2).join('.')}.${bad.toString('base64url')}`)).to.throw(TokenInvalidError, 'signature');
        expect(calls).to.deep.equal([{ a: 20, b: 20 }]);
      }
      calls.length = 0;
      expect(plugin.lookup(VECTOR)).to.deep.equal({ host: '10.0.0.5', port: 5902 });
      expect(calls).to.deep.equal([{ a: 20, b: 20 }]);
    });
  });

  describe('SignedToken (HS256)', () => {
    it('checks the MAC with timingSafeEqual on 32-byte buffers, wrong in its first or its last byte alike', () => {
      const now = Date.UTC(2026, 0, 1);
      const key = generateKey('k1', 'HS256');
      const ring = keyRing([key]);
      const token = signToken({ host: '10.0.0.5', port: 5901, ttlSec: 60 }, key, { now });
      const cut = token.lastIndexOf('.');
      const sig = Buffer.from(token.slice(cut + 1), 'base64url');
      for (const i of [0, sig.length - 1]) {
        const bad = Buffer.from(sig);
        bad[i] = bad[i]! ^ 1;
        calls.length = 0;
        expect(() => verifyToken(`${token.slice(0, cut)}.${bad.toString('base64url')}`, ring, { now })).to.throw(TokenInvalidError, 'signature');
        expect(calls).to.deep.equal([{ a: 32, b: 32 }]);
      }
    });
  });
});
