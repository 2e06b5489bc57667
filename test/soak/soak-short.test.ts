/**
 * The short soak, inside the default suite: 2,000 connect/relay/close cycles and 500
 * concurrent sessions against the tsockify command (scripts/soak.ts runs 100,000 and 10,000).
 * Every cycle and session succeeds, the proxy's file descriptors return exactly to their
 * baseline after each phase, and its heap (read after a forced GC through the V8 inspector)
 * and resident memory return to near their baseline.
 */
import { expect } from 'chai';
import { describeSnapshot, runSoak } from './soak-runner.js';

const MIB_KIB = 1024;

describe('soak: short (2,000 cycles, 500 concurrent sessions)', function () {
  this.timeout(90_000);

  it('relays every cycle and session, and returns to its baseline fds and memory', async () => {
    const r = await runSoak({ cycles: 2000, cycleConcurrency: 32, concurrent: 500, concurrentRounds: 2, phaseTimeoutMs: 40_000 });
    console.log(`      baseline ${describeSnapshot(r.baseline)}\n      after ${r.cycles.done} cycles in ${r.cycles.seconds.toFixed(1)} s: ${describeSnapshot(r.cycles.after)}\n` +
      r.concurrent.rounds.map((x, i) => `      round ${i + 1}, ${x.opened} concurrent: peak ${describeSnapshot(x.peak)}; after ${describeSnapshot(x.after)}`).join('\n'));
    expect(r.cycles.firstErrors).to.deep.equal([]);
    expect(r.cycles.done).to.equal(2000);
    expect(r.cycles.after.fds, 'fds after the cycles').to.equal(r.baseline.fds);
    for (const [i, round] of r.concurrent.rounds.entries()) {
      expect(round.opened, `round ${i + 1} opened`).to.equal(500);
      expect(round.relayed, `round ${i + 1} relayed`).to.equal(500);
      expect(round.peak.fds, 'two sockets per session at the peak').to.equal(r.baseline.fds + 1000);
      expect(round.after.fds, `fds after closing round ${i + 1}`).to.equal(r.baseline.fds);
    }
    // Memory, after a forced full GC: the heap holds nothing per finished session, and RSS
    // comes back down to near the warmed-up baseline.
    const heapBase = r.baseline.heapUsedKiB!;
    expect(r.cycles.after.heapUsedKiB! - heapBase, 'heap above baseline after 2,000 cycles, KiB').to.be.below(4 * MIB_KIB);
    expect(r.concurrent.after.heapUsedKiB! - heapBase, 'heap above baseline after the concurrent rounds, KiB').to.be.below(4 * MIB_KIB);
    expect(r.concurrent.after.rssKiB - r.baseline.rssKiB, 'RSS above baseline after everything closed, KiB').to.be.below(24 * MIB_KIB);
    expect(r.alive).to.equal(true);
    expect(r.proxyErrors).to.deep.equal([]);
  });
});
