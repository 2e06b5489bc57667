import { expect } from 'chai';
import { AuthenticationError, InvalidOptionError, type AuthPlugin, type RequestContext } from '@tsockify/core';
import { BasicHTTPAuth, ExpectOrigin, chainAuthPlugins } from '../../packages/auth-plugins/src/index.js';
import { makeContext } from './context.js';

async function refusal(p: Promise<unknown>): Promise<AuthenticationError> {
  return p.then(
    () => expect.fail('expected a refusal'),
    (e: unknown) => {
      expect(e).to.be.instanceOf(AuthenticationError);
      return e as AuthenticationError;
    },
  );
}

describe('chainAuthPlugins', () => {
  const origin = ExpectOrigin.fromSource('https://portal.example.org');
  const basic = BasicHTTPAuth.fromSource('vnc:pw');
  const good = { origin: 'https://portal.example.org', authorization: `Basic ${Buffer.from('vnc:pw').toString('base64')}` };

  it('allows a request every plugin allows', async () => {
    await chainAuthPlugins(origin, basic).authenticate(makeContext({ headers: good }));
  });

  it('refuses with the first refusal, its status and headers, and does not run the rest', async () => {
    const ran: string[] = [];
    const spy: AuthPlugin = { name: 'spy', authenticate: () => void ran.push('spy') };
    const err = await refusal(chainAuthPlugins(origin, spy, basic).authenticate(makeContext({ headers: { origin: 'https://evil.example' } })));
    expect(err.message).to.equal('Invalid Origin');
    expect(ran).to.deep.equal([]);
    const second = await refusal(chainAuthPlugins(origin, spy, basic).authenticate(makeContext({ headers: { origin: good.origin } })));
    expect(second.status).to.equal(401);
    expect(second.headers).to.deep.equal({ 'WWW-Authenticate': 'Basic realm="Websockify"' });
    expect(ran).to.deep.equal(['spy']);
  });

  it('mixes sync and async plugins', async () => {
    const slowNo: AuthPlugin = {
      authenticate: async (ctx: RequestContext) => {
        await new Promise((r) => setTimeout(r, 10));
        if (ctx.headers['x-ok'] !== 'yes') throw new AuthenticationError('nope', 403);
      },
    };
    const chain = chainAuthPlugins(origin, slowNo);
    expect(chain.name).to.equal('ExpectOrigin+anonymous');
    await chain.authenticate(makeContext({ headers: { origin: good.origin, 'x-ok': 'yes' } }));
    expect((await refusal(chain.authenticate(makeContext({ headers: { origin: good.origin } })))).message).to.equal('nope');
  });

  it('closes every plugin, even when one close fails', async () => {
    const closed: string[] = [];
    const a: AuthPlugin = { authenticate: () => {}, close: () => void closed.push('a') };
    const b: AuthPlugin = { authenticate: () => {}, close: async () => { closed.push('b'); throw new Error('b broke'); } };
    const c: AuthPlugin = { authenticate: () => {}, close: () => void closed.push('c') };
    const err = await chainAuthPlugins(a, b, c).close().then(() => null, (e: unknown) => e as Error);
    expect(err?.message).to.equal('b broke');
    expect(closed.sort()).to.deep.equal(['a', 'b', 'c']);
  });

  it('refuses an empty chain or a member without authenticate()', () => {
    expect(() => chainAuthPlugins()).to.throw(InvalidOptionError);
    expect(() => chainAuthPlugins({} as AuthPlugin)).to.throw(InvalidOptionError);
  });
});
