import { expect } from 'chai';
import { Writable } from 'node:stream';
import { createCliLogger, scrubObject, scrubTokens } from '../../packages/cli/src/logging.js';

/** A console stand-in without an fd, so the logger writes JSON lines into it. */
function capture(): { stream: Writable; lines(): Array<Record<string, unknown>>; text(): string } {
  let text = '';
  const stream = new Writable({ write(chunk: Buffer, _enc, cb) { text += chunk.toString(); cb(); } });
  return { stream, text: () => text, lines: () => text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>) };
}

async function loggerInto(sink: Writable, verbose = false) {
  return createCliLogger({ verbose, format: 'json', file: undefined, syslog: undefined, legacySyslog: false, console: sink, daemon: false });
}

describe('cli logging', () => {
  describe('#createCliLogger', () => {
    it('redacts fields named token, password, authorization and cookie at any depth', async () => {
      const out = capture();
      const { logger } = await loggerInto(out.stream);
      logger.info({
        token: 'T1', password: 'P1',
        req: { headers: { authorization: 'Basic abc', cookie: 'token=T2', 'set-cookie': 'x' }, token: 'T3' },
        a: { b: { c: { Authorization: 'Bearer T4' } } },
      }, 'request');
      const text = out.text();
      for (const secret of ['T1', 'P1', 'Basic abc', 'T2', 'T3', 'T4']) expect(text).to.not.include(secret);
      expect(out.lines()[0]).to.deep.include({ token: '[redacted]', password: '[redacted]' });
    });

    it('scrubs token= query values from messages and string fields', async () => {
      const out = capture();
      const { logger } = await loggerInto(out.stream);
      logger.info({ url: '/websockify?token=abc123&x=1' }, 'GET /websockify?token=abc123');
      const [line] = out.lines();
      expect(line!.url).to.equal('/websockify?token=[redacted]&x=1');
      expect(line!.msg).to.equal('GET /websockify?token=[redacted]');
    });

    it('logs debug lines only with -v', async () => {
      const quiet = capture();
      (await loggerInto(quiet.stream)).logger.debug('hidden');
      expect(quiet.text()).to.equal('');
      const loud = capture();
      (await loggerInto(loud.stream, true)).logger.debug('shown');
      expect(loud.lines()[0]).to.include({ msg: 'shown', level: 20 });
    });
  });

  describe('#scrubObject', () => {
    it('redacts secret fields in any case and at depth, and token= values, without touching the original', () => {
      const original = { session: 1, Token: 't0k', req: { headers: { Authorization: 'Basic eA==', cookie: 'a=b' } }, url: '/?token=s3cret&x=1' };
      const clean = scrubObject(original);
      expect(clean).to.deep.equal({
        session: 1, Token: '[redacted]', req: { headers: { Authorization: '[redacted]', cookie: '[redacted]' } }, url: '/?token=[redacted]&x=1',
      });
      expect(original.Token).to.equal('t0k');
      const untouched = { a: 1, b: { c: 'plain' } };
      expect(scrubObject(untouched)).to.equal(untouched);
    });
  });

  describe('#scrubTokens', () => {
    it('keeps other parameters and text intact', () => {
      expect(scrubTokens('vnc.html?path=websockify&token=a%20b#frag')).to.equal('vnc.html?path=websockify&token=[redacted]#frag');
      expect(scrubTokens('no secrets here')).to.equal('no secrets here');
    });
  });
});
