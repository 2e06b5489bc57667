import { expect } from 'chai';
import { AuthenticationError, InvalidOptionError } from '@tsockify/core';
import { ExpectOrigin, InvalidOriginError } from '../../packages/auth-plugins/src/index.js';
import { makeContext } from './context.js';

describe('ExpectOrigin', () => {
  const plugin = ExpectOrigin.fromSource('https://portal.example.org  http://localhost:8080/');

  describe('#authenticate', () => {
    it('allows a request whose Origin is in the list', () => {
      expect(() => plugin.authenticate(makeContext({ headers: { origin: 'https://portal.example.org' } }))).not.to.throw();
      expect(() => plugin.authenticate(makeContext({ headers: { origin: 'http://localhost:8080' } }))).not.to.throw();
    });

    it('refuses another origin with 403 "Invalid Origin", keeping expected and actual for the log', () => {
      let caught: unknown;
      try {
        plugin.authenticate(makeContext({ headers: { origin: 'https://evil.example' } }));
      } catch (err) {
        caught = err;
      }
      expect(caught).to.be.instanceOf(InvalidOriginError).and.instanceOf(AuthenticationError);
      const err = caught as InvalidOriginError;
      expect(err.status).to.equal(403);
      expect(err.message).to.equal('Invalid Origin');
      expect(err.actual).to.equal('https://evil.example');
      expect(err.expected).to.deep.equal(['https://portal.example.org', 'http://localhost:8080']);
    });

    it('refuses a request without an Origin header (websockify does too)', () => {
      expect(() => plugin.authenticate(makeContext())).to.throw(InvalidOriginError);
    });

    it('compares exactly: another port, scheme or a suffix is a different origin', () => {
      for (const origin of ['http://portal.example.org', 'https://portal.example.org:8443', 'https://portal.example.org.evil.example', 'null']) {
        expect(() => plugin.authenticate(makeContext({ headers: { origin } })), origin).to.throw(InvalidOriginError);
      }
    });
  });

  describe('.fromSource', () => {
    it('fails at startup for an empty list or an entry that is not an origin', () => {
      expect(() => ExpectOrigin.fromSource(undefined)).to.throw(InvalidOptionError, 'ExpectOrigin needs --auth-source');
      expect(() => ExpectOrigin.fromSource('   ')).to.throw(InvalidOptionError, 'ExpectOrigin expects space-separated origins');
      expect(() => ExpectOrigin.fromSource('portal.example.org')).to.throw(InvalidOptionError, '"portal.example.org" is not scheme://host[:port]');
    });
  });
});
