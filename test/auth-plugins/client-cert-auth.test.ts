import { expect } from 'chai';
import { AuthenticationError, InvalidOptionError } from '@tsockify/core';
import { ClientCertCNAuth } from '../../packages/auth-plugins/src/index.js';
import { makeContext } from './context.js';

describe('ClientCertCNAuth', () => {
  const plugin = ClientCertCNAuth.fromSource('alice.example.org  bob');

  describe('#authenticate', () => {
    it('allows a verified client certificate whose CN is listed', () => {
      expect(() => plugin.authenticate(makeContext({ secure: true, clientCertificate: { subject: { CN: 'bob' } as never } }))).not.to.throw();
    });

    it('allows the SSL_CLIENT_S_DN_CN header the core sets from the certificate, on a TLS connection', () => {
      expect(() => plugin.authenticate(makeContext({ secure: true, headers: { SSL_CLIENT_S_DN_CN: 'alice.example.org' } }))).not.to.throw();
    });

    it('refuses an unlisted CN, or no certificate at all, with 403', () => {
      for (const ctx of [
        makeContext({ secure: true, clientCertificate: { subject: { CN: 'mallory' } as never } }),
        makeContext({ secure: true }),
        makeContext({ secure: true, headers: { ssl_client_s_dn_cn: 'mallory' } }),
      ]) {
        let err: unknown;
        try {
          plugin.authenticate(ctx);
        } catch (e) {
          err = e;
        }
        expect(err).to.be.instanceOf(AuthenticationError);
        expect((err as AuthenticationError).status).to.equal(403);
      }
    });

    it('refuses a spoofed ssl_client_s_dn_cn header from a plain-ws client (websockify 0.13 lets a lowercase one through)', () => {
      for (const name of ['ssl_client_s_dn_cn', 'SSL_CLIENT_S_DN_CN', 'Ssl_Client_S_Dn_Cn']) {
        expect(() => plugin.authenticate(makeContext({ secure: false, headers: { [name]: 'alice.example.org' } })), name).to.throw(AuthenticationError);
      }
    });

    it('believes the certificate over a header that disagrees', () => {
      const ctx = makeContext({ secure: true, clientCertificate: { subject: { CN: 'mallory' } as never }, headers: { ssl_client_s_dn_cn: 'bob' } });
      expect(() => plugin.authenticate(ctx)).to.throw(AuthenticationError);
    });

    it('requires every CN of a multi-CN certificate to be listed', () => {
      const both = makeContext({ secure: true, clientCertificate: { subject: { CN: ['bob', 'alice.example.org'] } as never } });
      const mixed = makeContext({ secure: true, clientCertificate: { subject: { CN: ['bob', 'mallory'] } as never } });
      expect(() => plugin.authenticate(both)).not.to.throw();
      expect(() => plugin.authenticate(mixed)).to.throw(AuthenticationError);
    });
  });

  describe('.fromSource', () => {
    it('fails at startup without any common name', () => {
      expect(() => ClientCertCNAuth.fromSource(undefined)).to.throw(InvalidOptionError, 'ClientCertCNAuth needs --auth-source');
      expect(() => ClientCertCNAuth.fromSource(' ')).to.throw(InvalidOptionError, 'ClientCertCNAuth expects space-separated common names');
    });
  });
});
