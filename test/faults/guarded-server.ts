/**
 * What the fault suites share: an in-process server with two targets behind a token plugin
 * (`?token=echo`, an echo target; `?token=fault`, whose connections the test scripts through
 * `fault`), and around every test a good session to the echo target that must come back byte
 * for byte, then no live session, no open target socket, no leaked handle, no server error.
 */
import { expect } from 'chai';
import type net from 'node:net';
import { createServer, type SessionCloseInfo, type TokenPlugin, type TsockifyServer } from '../../packages/core/src/index.js';
import { startTcpTarget, type TcpTargetServer } from '../helpers/net.js';
import { startGoodSession, type GoodSession } from '../fuzz/good-session.js';
import { until } from './client-helper.js';
import { baselineCounts, expectNoHandleLeak, type Counts } from './leaks.js';

export interface GuardedServer {
  /** Set in `before`. */
  server: TsockifyServer;
  echo: TcpTargetServer;
  faulty: TcpTargetServer;
  /** What the `fault` target does with each connection it accepts (set it in the test). */
  fault: (s: net.Socket) => void;
  readonly closes: SessionCloseInfo[];
  readonly errors: Error[];
}

/** Register the hooks in the calling `describe`; the returned object fills in as they run. */
export function useGuardedServer(opts: { heartbeatMs?: number } = {}): GuardedServer {
  const g = { fault: () => {}, closes: [], errors: [] } as unknown as GuardedServer;
  let good: GoodSession;
  let baseline: Counts;

  before(async () => {
    g.echo = await startTcpTarget();
    g.faulty = await startTcpTarget((s) => g.fault(s));
    const tokens: TokenPlugin = {
      lookup: (t) => (t === 'echo' ? { host: '127.0.0.1', port: g.echo.port } : t === 'fault' ? { host: '127.0.0.1', port: g.faulty.port } : null),
    };
    g.server = createServer({ listen: { host: '127.0.0.1', port: 0 }, tokenPlugin: tokens, ...(opts.heartbeatMs ? { heartbeatMs: opts.heartbeatMs } : {}) });
    g.server.on('sessionClose', (i) => g.closes.push(i));
    g.server.on('error', (e) => g.errors.push(e));
    await g.server.listen();
  });
  after(async () => {
    await g.server?.close();
    await g.echo?.close();
    await g.faulty?.close();
  });

  beforeEach(async () => {
    baseline = await baselineCounts();
    good = await startGoodSession(`ws://127.0.0.1:${g.server.port}/?token=echo`);
  });
  afterEach(async function () {
    const r = await good.finish();
    if (this.currentTest?.state === 'failed') return;
    expect(r.unexpectedClose, 'the good session (which answers pings) was closed').to.equal(undefined);
    expect(r.echoedSha256, 'the good session lost or reordered bytes').to.equal(r.sentSha256);
    await until('no live session', () => g.server.sessionCount === 0 && g.server.pendingCount === 0);
    // The target side of every session is gone too.
    await until('target sockets closed', () => g.faulty.sockets.every((s) => s.destroyed) && g.echo.sockets.every((s) => s.destroyed));
    await expectNoHandleLeak(baseline);
    expect(g.errors).to.deep.equal([]);
  });
  return g;
}
