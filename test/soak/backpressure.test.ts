/**
 * Integrity under backpressure, default-suite size: 64 MiB each way through the tsockify
 * command with a slow reader on each side in turn (scripts/soak.ts runs the 1 GiB version).
 * SHA-256 equal both ways; the proxy's resident memory grows by less than RSS_BOUND_MIB over
 * its warmed-up baseline; and the fast writer is never more than LEAD_BOUND_MIB ahead of the
 * slow reader (the proxy's 1 MiB high-water mark plus the kernel's loopback socket buffers on
 * two legs). Without backpressure the writer would finish at once, about 55 MiB ahead, and the
 * proxy would hold those bytes.
 *
 * Measured on the 2-core reference machine: RSS growth 35-38 MiB whatever the volume (64 MiB,
 * 256 MiB and 1 GiB alike: heap and buffer-pool warm-up, not retention), writer lead 12-21 MiB.
 */
import { expect } from 'chai';
import { runIntegrity } from './integrity.js';

const MIB = 1024 * 1024;
/** The bound on the proxy's RSS growth during a run (see docs/security.md for the measurement). */
export const RSS_BOUND_MIB = 48;
/** The bound on how far the fast writer may run ahead of the slow reader. */
export const LEAD_BOUND_MIB = 32;

describe('soak: integrity under backpressure (64 MiB each way)', function () {
  this.timeout(120_000);
  for (const slow of ['client', 'target'] as const) {
    it(`delivers 64 MiB each way byte-exact with a slow ${slow} reader, proxy RSS growth under ${RSS_BOUND_MIB} MiB`, async () => {
      const r = await runIntegrity({ bytes: 64 * MIB, slow, slowRate: 12 * MIB });
      console.log(`      slow ${slow}: ${r.seconds.toFixed(1)} s, proxy RSS ${(r.rssBaselineKiB / 1024).toFixed(1)} MiB → max ${(r.rssMaxKiB / 1024).toFixed(1)} MiB (+${(r.rssGrowthKiB / 1024).toFixed(1)} MiB), writer at most ${(r.maxLeadBytes / MIB).toFixed(1)} MiB ahead of the slow reader`);
      expect(r.clientToTarget.bytes).to.equal(64 * MIB);
      expect(r.targetToClient.bytes).to.equal(64 * MIB);
      expect(r.clientToTarget.received, 'client → target SHA-256').to.equal(r.clientToTarget.sent);
      expect(r.targetToClient.received, 'target → client SHA-256').to.equal(r.targetToClient.sent);
      expect(r.rssGrowthKiB / 1024, 'proxy RSS growth, MiB').to.be.below(RSS_BOUND_MIB);
      expect(r.maxLeadBytes / MIB, 'writer lead over the slow reader, MiB').to.be.below(LEAD_BOUND_MIB);
    });
  }
});
