/**
 * The short soak, inside the default suite: 2,000 connect/relay/close cycles and 500
 * concurrent sessions against the tsockify command (scripts/soak.ts runs 100,000 and 10,000).
 * Every cycle and session succeeds, the proxy's file descriptors return exactly to their
 * baseline after each phase, and its resident memory stops growing (no per-session leak).
 */
import { expect } from 'chai';
import { runSoak } from './soak-runner.js';

const MIB_KIB = 1024;

describe('soak: short (2,000 cycles, 500 concurrent sessions)', function () {
  this.timeout(90_000);

  it('relays every cycle and session, and returns to its baseline fds and memory', async () => {
    const r = await runSoak({ cycles: 2000, cycleConcurrency: 32, concurrent: 500, phaseTimeoutMs: 40_000 });
    const mib = (kib: number): string => (kib / MIB_KIB).toFixed(1);
    console.log(`      baseline ${r.baseline.fds} fds, RSS ${mib(r.baseline.rssKiB)} MiB; ` +
      `${r.cycles.done} cycles in ${r.cycles.seconds.toFixed(1)} s → ${r.cycles.after.fds} fds, RSS ${mib(r.cycles.after.rssKiB)} MiB; ` +
      `${r.concurrent.opened} concurrent: peak ${r.concurrent.peak.fds} fds, RSS ${mib(r.concurrent.peak.rssKiB)} MiB → ${r.concurrent.after.fds} fds, RSS ${mib(r.concurrent.after.rssKiB)} MiB`);
    expect(r.cycles.firstErrors).to.deep.equal([]);
    expect(r.cycles.done).to.equal(2000);
    expect(r.concurrent.opened).to.equal(500);
    expect(r.concurrent.relayedAfterOpen).to.equal(500);
    expect(r.concurrent.peak.fds, 'two sockets per session at the peak').to.be.at.least(r.baseline.fds + 1000);
    expect(r.cycles.after.fds, 'fds after the cycles').to.equal(r.baseline.fds);
    expect(r.concurrent.after.fds, 'fds after closing every session').to.equal(r.baseline.fds);
    // Memory: the heap grows once while warming up, then stays; no growth in the second half
    // of the cycles, and nothing kept after 500 sessions closed.
    expect(r.cycles.after.rssKiB - r.cycles.midway!.rssKiB, 'RSS growth over the second 1,000 cycles, KiB').to.be.below(16 * MIB_KIB);
    expect(r.concurrent.after.rssKiB - r.baseline.rssKiB, 'RSS above baseline after everything closed, KiB').to.be.below(64 * MIB_KIB);
    expect(r.alive).to.equal(true);
    expect(r.proxyErrors).to.deep.equal([]);
  });
});
