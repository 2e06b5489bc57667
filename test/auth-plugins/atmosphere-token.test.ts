import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { InvalidOptionError, TokenInvalidError } from '@tsockify/core';
import { AtmosphereToken, createTokenPlugin } from '../../packages/auth-plugins/src/index.js';
import { makeContext } from './context.js';
import { tempDir } from './tmp.js';

const run = promisify(execFile);
const PYTHON = '/usr/bin/python3';

// The test vector of ../shared/spec/web-desktop.md (itsdangerous 0.24, 2011 epoch).
const SECRET = 'secrets-things-that-arenot-so-secret';
const SALT = 'i-like-the-idea-of-a-salt';
const VECTOR = 'WyIxMC4wLjAuNSJd.F9eEAA.7cL4OIAReFOuQgZu9WAMUG-RCkE';
const VECTOR_SIGNED_AT_MS = (1293840000 + 400000000) * 1000;

function rejectionOf(fn: () => unknown): TokenInvalidError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(TokenInvalidError);
    return err as TokenInvalidError;
  }
  return expect.fail('expected a TokenInvalidError');
}

/** Mint with Debian's python3-itsdangerous (2.x, Unix epoch), optionally shifted to the 0.24 epoch. */
async function itsdangerous(payload: unknown, epoch: 'unix' | '2011'): Promise<string> {
  const script = `import sys, json, time
from itsdangerous import URLSafeTimedSerializer, TimestampSigner
class Signer2011(TimestampSigner):
    def get_timestamp(self):
        return int(time.time()) - 1293840000
kw = {"signer": Signer2011} if sys.argv[3] == "2011" else {}
s = URLSafeTimedSerializer(sys.argv[1], salt=sys.argv[2], **kw)
print(s.dumps(json.loads(sys.argv[4])))`;
  const { stdout } = await run(PYTHON, ['-c', script, SECRET, SALT, epoch, JSON.stringify(payload)], { timeout: 15_000 });
  return stdout.trim();
}

describe('AtmosphereToken', () => {
  const at = (ms: number, extra: Partial<ConstructorParameters<typeof AtmosphereToken>[0]> = {}): AtmosphereToken =>
    new AtmosphereToken({ secret: SECRET, salt: SALT, port: 4200, now: () => ms, ...extra });

  describe('#lookup', () => {
    it('verifies the web-desktop.md test vector and targets the instance on the configured port', () => {
      expect(at(VECTOR_SIGNED_AT_MS + 10_000).lookup(VECTOR, makeContext())).to.deep.equal({ host: '10.0.0.5', port: 4200 });
    });

    it('refuses the vector once it is older than maxAgeSec (default 300 s)', () => {
      expect(() => at(VECTOR_SIGNED_AT_MS + 300_000).lookup(VECTOR)).not.to.throw();
      expect(rejectionOf(() => at(VECTOR_SIGNED_AT_MS + 301_000).lookup(VECTOR)).message).to.equal('token expired');
      expect(() => at(VECTOR_SIGNED_AT_MS + 3_000_000, { maxAgeSec: 3600 }).lookup(VECTOR)).not.to.throw();
    });

    it('refuses a token stamped in the future beyond the allowed clock skew', () => {
      expect(() => at(VECTOR_SIGNED_AT_MS - 20_000).lookup(VECTOR)).not.to.throw();
      expect(rejectionOf(() => at(VECTOR_SIGNED_AT_MS - 60_000).lookup(VECTOR)).message).to.equal('token from the future');
    });

    it('reads the timestamp with the epoch it is told: the 0.24 vector is 41 years stale as Unix time', () => {
      expect(() => at(VECTOR_SIGNED_AT_MS, { epoch: 'itsdangerous-0.24' }).lookup(VECTOR)).not.to.throw();
      expect(rejectionOf(() => at(VECTOR_SIGNED_AT_MS, { epoch: 'unix' }).lookup(VECTOR)).message).to.equal('token expired');
    });

    it('refuses a changed payload, timestamp or signature, and the wrong secret or salt', () => {
      const [p, t, s] = VECTOR.split('.') as [string, string, string];
      const forgedPayload = `${Buffer.from('["10.0.0.6"]').toString('base64url')}.${t}.${s}`;
      const now = VECTOR_SIGNED_AT_MS;
      for (const token of [forgedPayload, `${p}.F9eEAB.${s}`, `${p}.${t}.${s.slice(0, -1)}A`, `${p}.${t}.`, `${p}.${t}.${s}x`]) {
        expect(rejectionOf(() => at(now).lookup(token)).message, token).to.equal('token signature invalid');
      }
      expect(rejectionOf(() => at(now, { secret: 'other' }).lookup(VECTOR)).message).to.equal('token signature invalid');
      expect(rejectionOf(() => at(now, { salt: 'other' }).lookup(VECTOR)).message).to.equal('token signature invalid');
    });

    it('refuses malformed tokens without echoing them', () => {
      for (const token of ['', 'sekrit', 'sekrit.sekrit', '..', 'a.b.c.d']) {
        const err = rejectionOf(() => at(VECTOR_SIGNED_AT_MS).lookup(token));
        expect(err.message).not.to.include('sekrit');
      }
    });
  });

  describe('tokens minted by python3-itsdangerous (an independent implementation)', () => {
    it('accepts a Unix-epoch token (itsdangerous 1.0 and later)', async () => {
      const token = await itsdangerous(['10.1.2.3'], 'unix');
      expect(new AtmosphereToken({ secret: SECRET, salt: SALT, port: 5902 }).lookup(token)).to.deep.equal({ host: '10.1.2.3', port: 5902 });
      expect(rejectionOf(() => new AtmosphereToken({ secret: SECRET, salt: SALT, port: 5902, epoch: 'itsdangerous-0.24' }).lookup(token)).message).to.equal(
        'token from the future',
      );
    });

    it('accepts a 2011-epoch token (itsdangerous 0.24, what Atmosphere mints)', async () => {
      const token = await itsdangerous(['10.1.2.4'], '2011');
      expect(new AtmosphereToken({ secret: SECRET, salt: SALT, port: 4200 }).lookup(token)).to.deep.equal({ host: '10.1.2.4', port: 4200 });
    });

    it('accepts a zlib-compressed payload (a leading ".") and an IPv6 address', async () => {
      const token = await itsdangerous(['fd00::7', 'x'.repeat(300)], 'unix');
      expect(token.startsWith('.')).to.equal(true);
      expect(new AtmosphereToken({ secret: SECRET, salt: SALT, port: 4200 }).lookup(token)).to.deep.equal({ host: 'fd00::7', port: 4200 });
    });

    it('refuses a signed payload without an address', async () => {
      const token = await itsdangerous([], 'unix');
      expect(rejectionOf(() => new AtmosphereToken({ secret: SECRET, salt: SALT, port: 4200 }).lookup(token)).message).to.equal(
        'token has no instance address',
      );
    });
  });

  describe('.fromSource', () => {
    let dir: string;
    let cleanup: () => Promise<void>;
    beforeEach(async () => ({ dir, cleanup } = await tempDir()));
    afterEach(() => cleanup());

    it('reads secret_file:salt:port[:max_age_seconds], by name through the registry too', async () => {
      const file = path.join(dir, 'secret');
      await writeFile(file, `${SECRET}\n`);
      const plugin = await AtmosphereToken.fromSource(`${file}:${SALT}:4200:600`);
      const token = await itsdangerous(['10.9.9.9'], '2011');
      expect(plugin.lookup(token)).to.deep.equal({ host: '10.9.9.9', port: 4200 });
      const viaRegistry = await createTokenPlugin('AtmosphereToken', `"${file}":"${SALT}":5902`);
      expect(await viaRegistry.lookup(token, makeContext())).to.deep.equal({ host: '10.9.9.9', port: 5902 });
    });

    it('fails at startup for a bad source, naming the grammar and never printing the secret', async () => {
      const file = path.join(dir, 'secret');
      await writeFile(file, SECRET);
      const bad = async (source: string): Promise<string> =>
        AtmosphereToken.fromSource(source).then(
          () => expect.fail(`accepted ${source}`),
          (e: unknown) => {
            expect(e).to.be.instanceOf(InvalidOptionError);
            return (e as Error).message;
          },
        );
      expect(await bad(`${file}:salt`)).to.include('AtmosphereToken expects secret_file:salt:port[:max_age_seconds]');
      expect(await bad(`${file}:salt:http`)).to.include('port "http" is not a number');
      expect(await bad(`${path.join(dir, 'nope')}:salt:4200`)).to.include('secret file: ENOENT');
      expect(await bad(`${file}:salt:4200:soon`)).not.to.include(SECRET);
    });
  });
});
