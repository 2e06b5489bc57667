import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { InvalidOptionError, TokenInvalidError } from '@tsockify/core';
import { JWTTokenApi } from '../../packages/auth-plugins/src/index.js';
import { captureLogger, makeContext } from './context.js';
import { loadJose, type Jose } from './jose.js';
import { tempDir } from './tmp.js';

const run = promisify(execFile);
/** Debian's python3 (with python3-jwcrypto), not whatever python3 is first on PATH. */
const PYTHON = '/usr/bin/python3';

const inAMinute = (): number => Math.floor(Date.now() / 1000) + 60;

async function rejection(p: Promise<unknown>): Promise<Error> {
  return p.then(
    () => expect.fail('expected a rejection'),
    (e: unknown) => e as Error,
  );
}

describe('JWTTokenApi', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let rsa: { privateKey: KeyObject; publicKey: KeyObject };
  let publicPem: string;
  let privatePem: string;
  /** The key file text of an HMAC secret, as websockify reads it: base64url (a JWK "k"). */
  const secretText = 'secret_sauce_secret_sauce_secret_sauce_secret_sauce';
  const secretBytes = new Uint8Array(Buffer.from(secretText, 'base64url'));

  let jose: typeof Jose;
  before(async () => {
    jose = await loadJose();
    rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    publicPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }) as string;
    privatePem = rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  });
  beforeEach(async () => ({ dir, cleanup } = await tempDir()));
  afterEach(() => cleanup());

  async function keyFile(name: string, text: string): Promise<string> {
    const file = path.join(dir, name);
    await writeFile(file, text);
    return file;
  }

  function rs256(claims: Jose.JWTPayload, key: KeyObject = rsa.privateKey): Promise<string> {
    return new jose.SignJWT(claims).setProtectedHeader({ alg: 'RS256' }).sign(key);
  }

  describe('#lookup with a JWS', () => {
    it('verifies an RS256 token with a PEM public key and returns the host and port claims', async () => {
      const plugin = await JWTTokenApi.fromSource(await keyFile('public.pem', publicPem));
      const token = await rs256({ host: '10.0.0.5', port: 5901, exp: inAMinute() });
      expect(await plugin.lookup(token, makeContext())).to.deep.equal({ host: '10.0.0.5', port: 5901 });
    });

    it('verifies with the public half of a PEM private key', async () => {
      const plugin = await JWTTokenApi.fromSource(await keyFile('private.pem', privatePem));
      const token = await rs256({ host: 'h', port: '5902', exp: inAMinute() });
      expect(await plugin.lookup(token, makeContext())).to.deep.equal({ host: 'h', port: 5902 });
    });

    it('takes a non-PEM key file as a base64url HMAC secret, as websockify (jwcrypto k=...)', async () => {
      const plugin = await JWTTokenApi.fromSource(await keyFile('symmetric.key', `${secretText}\n`));
      const token = await new jose.SignJWT({ host: 'h', port: 1, exp: inAMinute() }).setProtectedHeader({ alg: 'HS256' }).sign(secretBytes);
      expect(await plugin.lookup(token, makeContext())).to.deep.equal({ host: 'h', port: 1 });
    });

    it('takes the key file text as it is with secretEncoding "utf8"', async () => {
      const plugin = await JWTTokenApi.fromSource(await keyFile('k', 'a passphrase, not base64!\n'), { secretEncoding: 'utf8' });
      const token = await new jose.SignJWT({ host: 'h', port: 1, exp: inAMinute() })
        .setProtectedHeader({ alg: 'HS512' })
        .sign(new TextEncoder().encode('a passphrase, not base64!'));
      expect(await plugin.lookup(token, makeContext())).to.deep.equal({ host: 'h', port: 1 });
    });

    it('accepts an IPv6 host claim and passes sub and jti on as audit meta', async () => {
      const plugin = await JWTTokenApi.fromSource(await keyFile('public.pem', publicPem));
      const token = await rs256({ host: '[fd00::5]', port: 5901, sub: 'alice', jti: 'tok-42', exp: inAMinute() });
      expect(await plugin.lookup(token, makeContext())).to.deep.equal({
        host: 'fd00::5',
        port: 5901,
        meta: { subject: 'alice', tokenId: 'tok-42' },
      });
    });

    it('refuses a token without exp by default, and accepts it with requireExp: false', async () => {
      const file = await keyFile('public.pem', publicPem);
      const token = await rs256({ host: 'h', port: 1 });
      const strict = await JWTTokenApi.fromSource(file);
      const err = await rejection(strict.lookup(token, makeContext()));
      expect(err).to.be.instanceOf(TokenInvalidError);
      expect(err.message).to.equal('token has no exp claim');
      const relaxed = await JWTTokenApi.fromSource(file, { requireExp: false });
      expect(await relaxed.lookup(token, makeContext())).to.deep.equal({ host: 'h', port: 1 });
    });

    it('refuses an expired token and one not yet valid (nbf), saying which', async () => {
      const plugin = await JWTTokenApi.fromSource(await keyFile('public.pem', publicPem));
      const now = Math.floor(Date.now() / 1000);
      const expired = await rs256({ host: 'h', port: 1, exp: now - 10 });
      const early = await rs256({ host: 'h', port: 1, nbf: now + 100, exp: now + 200 });
      expect((await rejection(plugin.lookup(expired, makeContext()))).message).to.equal('token expired');
      expect((await rejection(plugin.lookup(early, makeContext()))).message).to.equal('token not yet valid');
    });

    it('allows clock skew with clockToleranceSec', async () => {
      const plugin = await JWTTokenApi.fromSource(await keyFile('public.pem', publicPem), { clockToleranceSec: 30 });
      const token = await rs256({ host: 'h', port: 1, exp: Math.floor(Date.now() / 1000) - 10 });
      expect(await plugin.lookup(token, makeContext())).to.deep.equal({ host: 'h', port: 1 });
    });

    it('refuses a tampered payload', async () => {
      const plugin = await JWTTokenApi.fromSource(await keyFile('public.pem', publicPem));
      const [h, , s] = (await rs256({ host: 'h', port: 1, exp: inAMinute() })).split('.');
      const forged = jose.base64url.encode(JSON.stringify({ host: 'evil', port: 1, exp: inAMinute() }));
      const err = await rejection(plugin.lookup(`${h}.${forged}.${s}`, makeContext()));
      expect(err).to.be.instanceOf(TokenInvalidError);
      expect(err.message).to.equal('token signature invalid');
    });

    it('refuses alg "none"', async () => {
      const plugin = await JWTTokenApi.fromSource(await keyFile('public.pem', publicPem));
      const token = new jose.UnsecuredJWT({ host: 'h', port: 1, exp: inAMinute() }).encode();
      const err = await rejection(plugin.lookup(token, makeContext()));
      expect(err).to.be.instanceOf(TokenInvalidError);
      expect(err.message).to.equal('token algorithm not allowed');
    });

    it('refuses HS256 signed with the public key as the secret (algorithm confusion)', async () => {
      const plugin = await JWTTokenApi.fromSource(await keyFile('public.pem', publicPem));
      const token = await new jose.SignJWT({ host: 'evil', port: 1, exp: inAMinute() })
        .setProtectedHeader({ alg: 'HS256' })
        .sign(new TextEncoder().encode(publicPem));
      const err = await rejection(plugin.lookup(token, makeContext()));
      expect(err).to.be.instanceOf(TokenInvalidError);
      expect(err.message).to.equal('token algorithm not allowed');
    });

    it('refuses an algorithm outside the configured allow-list', async () => {
      const plugin = await JWTTokenApi.fromSource(await keyFile('public.pem', publicPem), { algorithms: ['PS256'] });
      const err = await rejection(plugin.lookup(await rs256({ host: 'h', port: 1, exp: inAMinute() }), makeContext()));
      expect(err.message).to.equal('token algorithm not allowed');
    });

    it('refuses a token without host or port claims', async () => {
      const plugin = await JWTTokenApi.fromSource(await keyFile('public.pem', publicPem));
      const err = await rejection(plugin.lookup(await rs256({ host: 'h', exp: inAMinute() }), makeContext()));
      expect(err).to.be.instanceOf(TokenInvalidError);
      expect(err.message).to.equal('token has no valid host and port claims');
    });

    it('refuses garbage and never puts the token in the error or the log', async () => {
      const plugin = await JWTTokenApi.fromSource(await keyFile('public.pem', publicPem));
      const log = captureLogger();
      for (const token of ['not-a-jwt', 'a.b.c', 'x.y', 'sekrit.sekrit.sekrit.sekrit.sekrit']) {
        const err = await rejection(plugin.lookup(token, makeContext({ log })));
        expect(err, token).to.be.instanceOf(TokenInvalidError);
        expect(err.message).not.to.include('sekrit');
      }
      expect(log.text()).not.to.include('sekrit');
    });

    it('picks up a rotated key file without a restart', async () => {
      const file = await keyFile('public.pem', publicPem);
      const plugin = await JWTTokenApi.fromSource(file);
      const next = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const token = await new jose.SignJWT({ host: 'h', port: 3, exp: inAMinute() }).setProtectedHeader({ alg: 'ES256' }).sign(next.privateKey);
      expect((await rejection(plugin.lookup(token, makeContext()))).message).to.equal('token algorithm not allowed');
      await writeFile(file, next.publicKey.export({ type: 'spki', format: 'pem' }) as string);
      expect(await plugin.lookup(token, makeContext())).to.deep.equal({ host: 'h', port: 3 });
    });
  });

  describe('#lookup with a JWE', () => {
    it('decrypts a JWE (RSA-OAEP-256) with the private key and verifies the JWS inside (websockify nesting)', async () => {
      const plugin = await JWTTokenApi.fromSource(await keyFile('private.pem', privatePem));
      const jws = await rs256({ host: 'inner', port: 5903, exp: inAMinute() });
      const jwe = await new jose.CompactEncrypt(new TextEncoder().encode(jws))
        .setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM', cty: 'JWT' })
        .encrypt(rsa.publicKey);
      expect(await plugin.lookup(jwe, makeContext())).to.deep.equal({ host: 'inner', port: 5903 });
    });

    it('decrypts a direct-key JWE with the shared secret', async () => {
      const key = randomBytes(32);
      const plugin = await JWTTokenApi.fromSource(await keyFile('k', key.toString('base64url')));
      const jws = await new jose.SignJWT({ host: 'd', port: 1, exp: inAMinute() }).setProtectedHeader({ alg: 'HS256' }).sign(key);
      const jwe = await new jose.CompactEncrypt(new TextEncoder().encode(jws)).setProtectedHeader({ alg: 'dir', enc: 'A256GCM' }).encrypt(key);
      expect(await plugin.lookup(jwe, makeContext())).to.deep.equal({ host: 'd', port: 1 });
    });

    it('refuses a JWE whose plaintext is bare claims, not a signed JWT (anyone with the public key could mint it)', async () => {
      const plugin = await JWTTokenApi.fromSource(await keyFile('private.pem', privatePem));
      const jwe = await new jose.CompactEncrypt(new TextEncoder().encode(JSON.stringify({ host: 'evil', port: 1, exp: inAMinute() })))
        .setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM' })
        .encrypt(rsa.publicKey);
      const err = await rejection(plugin.lookup(jwe, makeContext()));
      expect(err.message).to.equal('encrypted token does not hold a signed JWT');
    });

    it('refuses a JWE when the key file holds only a public key', async () => {
      const plugin = await JWTTokenApi.fromSource(await keyFile('public.pem', publicPem));
      const jwe = await new jose.CompactEncrypt(new TextEncoder().encode(await rs256({ host: 'h', port: 1, exp: inAMinute() })))
        .setProtectedHeader({ alg: 'RSA-OAEP', enc: 'A128GCM' })
        .encrypt(rsa.publicKey);
      const err = await rejection(plugin.lookup(jwe, makeContext()));
      expect(err.message).to.equal('token is encrypted but the key file holds only a public key');
    });

    it('refuses RSA1_5 key management (Bleichenbacher) before decrypting anything', async () => {
      const plugin = await JWTTokenApi.fromSource(await keyFile('private.pem', privatePem));
      const header = jose.base64url.encode(JSON.stringify({ alg: 'RSA1_5', enc: 'A256CBC-HS512' }));
      const fake = [header, jose.base64url.encode(randomBytes(256)), jose.base64url.encode(randomBytes(16)), 'AAAA', jose.base64url.encode(randomBytes(32))].join('.');
      const err = await rejection(plugin.lookup(fake, makeContext()));
      expect(err).to.be.instanceOf(TokenInvalidError);
      expect(err.message).to.equal('token algorithm not allowed');
    });
  });

  describe('tokens minted by python3-jwcrypto (an independent implementation)', () => {
    async function jwcrypto(script: string, ...args: string[]): Promise<string> {
      const { stdout } = await run(PYTHON, ['-c', script, ...args], { timeout: 15_000 });
      return stdout.trim();
    }

    it('accepts HS256 minted as websockify\'s own test does (JWK oct, k = key file text)', async () => {
      const file = await keyFile('symmetric.key', secretText);
      const token = await jwcrypto(
        `import sys, time
from jwcrypto import jwk, jwt
key = jwk.JWK()
key.import_key(kty="oct", k=open(sys.argv[1]).read())
t = jwt.JWT(header={"alg": "HS256"}, claims={"host": "remote_host", "port": 5901, "exp": int(time.time()) + 60})
t.make_signed_token(key)
print(t.serialize())`,
        file,
      );
      const plugin = await JWTTokenApi.fromSource(file);
      expect(await plugin.lookup(token, makeContext())).to.deep.equal({ host: 'remote_host', port: 5901 });
    });

    it('accepts an RS256 JWS nested in an RSA-OAEP-256 JWE, verified and decrypted with one PEM private key', async () => {
      const file = await keyFile('private.pem', privatePem);
      const { jws, jwe } = JSON.parse(
        await jwcrypto(
          `import sys, json, time
from jwcrypto import jwk, jwt
key = jwk.JWK()
key.import_from_pem(open(sys.argv[1], "rb").read())
t = jwt.JWT(header={"alg": "RS256"}, claims={"host": "remote_host", "port": "5902", "exp": int(time.time()) + 60})
t.make_signed_token(key)
e = jwt.JWT(header={"alg": "RSA-OAEP-256", "enc": "A256CBC-HS512"}, claims=t.serialize())
e.make_encrypted_token(key)
print(json.dumps({"jws": t.serialize(), "jwe": e.serialize()}))`,
          file,
        ),
      ) as { jws: string; jwe: string };
      const plugin = await JWTTokenApi.fromSource(file);
      expect(await plugin.lookup(jws, makeContext())).to.deep.equal({ host: 'remote_host', port: 5902 });
      expect(await plugin.lookup(jwe, makeContext())).to.deep.equal({ host: 'remote_host', port: 5902 });
    });

    it('refuses a jwcrypto token that websockify would accept forever (no exp)', async () => {
      const file = await keyFile('symmetric.key', secretText);
      const token = await jwcrypto(
        `import sys
from jwcrypto import jwk, jwt
key = jwk.JWK()
key.import_key(kty="oct", k=open(sys.argv[1]).read())
t = jwt.JWT(header={"alg": "HS256"}, claims={"host": "remote_host", "port": 5901})
t.make_signed_token(key)
print(t.serialize())`,
        file,
      );
      const plugin = await JWTTokenApi.fromSource(file);
      expect((await rejection(plugin.lookup(token, makeContext()))).message).to.equal('token has no exp claim');
    });
  });

  describe('.fromSource', () => {
    it('fails at startup for a missing key file, naming the value and the grammar', async () => {
      const missing = path.join(dir, 'nope.pem');
      const err = await rejection(JWTTokenApi.fromSource(missing));
      expect(err).to.be.instanceOf(InvalidOptionError);
      expect(err.message).to.match(new RegExp(`^invalid --token-source "${missing.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}": JWTTokenApi expects a key file`));
    });

    it('fails at startup for a broken PEM or a secret that is not base64url', async () => {
      const pem = await rejection(JWTTokenApi.fromSource(await keyFile('bad.pem', '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n')));
      expect(pem).to.be.instanceOf(InvalidOptionError);
      expect(pem.message).to.include('PEM public key cannot be read');
      const secret = await rejection(JWTTokenApi.fromSource(await keyFile('s', 'has spaces in it')));
      expect(secret).to.be.instanceOf(InvalidOptionError);
      expect(secret.message).to.include('secretEncoding "utf8"');
    });

    it('refuses "none" in an allow-list', () => {
      expect(() => new JWTTokenApi({ keyFile: 'x', algorithms: ['none'] })).to.throw(InvalidOptionError);
    });
  });
});
