import { inspect } from 'node:util';
import { expect } from 'chai';
import { AuthenticationError, InvalidOptionError } from '@tsockify/core';
import { BasicHTTPAuth } from '../../packages/auth-plugins/src/index.js';
import { makeContext } from './context.js';

const basic = (pair: string, encoding: BufferEncoding = 'utf8'): string => `Basic ${Buffer.from(pair, encoding).toString('base64')}`;

function refusal(fn: () => void): AuthenticationError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(AuthenticationError);
    return err as AuthenticationError;
  }
  return expect.fail('expected an AuthenticationError');
}

describe('BasicHTTPAuth', () => {
  const plugin = BasicHTTPAuth.fromSource('vnc:s3cret:with:colons');

  describe('#authenticate', () => {
    it('allows the right user and password (the password may hold colons)', () => {
      expect(() => plugin.authenticate(makeContext({ headers: { authorization: basic('vnc:s3cret:with:colons') } }))).not.to.throw();
    });

    it('demands credentials with 401 and WWW-Authenticate: Basic realm="Websockify" when there is no Authorization', () => {
      const err = refusal(() => plugin.authenticate(makeContext()));
      expect(err.status).to.equal(401);
      expect(err.headers).to.deep.equal({ 'WWW-Authenticate': 'Basic realm="Websockify"' });
    });

    it('answers 401 with the challenge for a wrong password or user', () => {
      for (const pair of ['vnc:wrong', 'other:s3cret:with:colons', 'vnc:s3cret:with:colon', 'vnc:s3cret:with:colonsX', ':']) {
        const err = refusal(() => plugin.authenticate(makeContext({ headers: { authorization: basic(pair) } })));
        expect(err.status, pair).to.equal(401);
        expect(err.headers['WWW-Authenticate']).to.equal('Basic realm="Websockify"');
      }
    });

    it('answers 403 for another scheme, bad base64 or credentials without a colon', () => {
      for (const authorization of ['Bearer abc', 'Digest username="vnc"', 'Basic !!!notbase64', basic('nocolon')]) {
        const err = refusal(() => plugin.authenticate(makeContext({ headers: { authorization } })));
        expect(err.status, authorization).to.equal(403);
        expect(err.headers).to.deep.equal({});
      }
    });

    it('matches the scheme name case-insensitively (RFC 7617)', () => {
      const header = basic('vnc:s3cret:with:colons').replace('Basic', 'bAsIc');
      expect(() => plugin.authenticate(makeContext({ headers: { authorization: header } }))).not.to.throw();
    });

    it('accepts a non-ASCII password sent as UTF-8 or as ISO-8859-1 (what websockify decodes)', () => {
      const p = BasicHTTPAuth.fromSource('jörg:pässwörd');
      expect(() => p.authenticate(makeContext({ headers: { authorization: basic('jörg:pässwörd', 'utf8') } }))).not.to.throw();
      expect(() => p.authenticate(makeContext({ headers: { authorization: basic('jörg:pässwörd', 'latin1') } }))).not.to.throw();
    });

    it('does not accept a password that only shares its low bytes with the real one', () => {
      // '€' is U+20AC; a naive latin1 encoding would turn it into 0xAC ('¬').
      const p = BasicHTTPAuth.fromSource('u:€');
      expect(refusal(() => p.authenticate(makeContext({ headers: { authorization: basic('u:¬', 'latin1') } }))).status).to.equal(401);
      expect(() => p.authenticate(makeContext({ headers: { authorization: basic('u:€') } }))).not.to.throw();
    });

    it('keeps only fixed-length hashes of the credentials, compared with timingSafeEqual (no plaintext in memory)', () => {
      const p = BasicHTTPAuth.fromSource('admin:correct-horse-battery-staple');
      const dump = inspect(p, { showHidden: true, depth: 5 });
      expect(dump).not.to.include('correct-horse');
      expect(dump).not.to.include(Buffer.from('admin:correct-horse-battery-staple').toString('hex'));
    });
  });

  describe('.fromSource', () => {
    it('refuses a source without a colon, without printing it (it is a secret)', () => {
      expect(() => BasicHTTPAuth.fromSource('justapassword')).to.throw(InvalidOptionError, 'invalid --auth-source: BasicHTTPAuth expects user:password');
      try {
        BasicHTTPAuth.fromSource('justapassword');
      } catch (err) {
        expect((err as Error).message).not.to.include('justapassword');
      }
      expect(() => BasicHTTPAuth.fromSource(undefined)).to.throw(InvalidOptionError, 'BasicHTTPAuth needs --auth-source');
    });
  });
});
