import { expect } from 'chai';
import { allocatorPrimingSkipped, primeAllocator } from '../../packages/core/src/index.js';

// The effect (no page-fault storm at hundreds of MiB/s) is measured by the benchmark, not here:
// whether an unprimed process falls into it varies from one start to the next.
describe('allocator priming', () => {
  const onGlibc = Boolean((process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime);

  it('applies on Linux with glibc when the operator set no malloc thresholds', function () {
    if (!onGlibc) {
      expect(allocatorPrimingSkipped({})).to.be.a('string');
      return;
    }
    expect(allocatorPrimingSkipped({})).to.equal(undefined);
    expect(allocatorPrimingSkipped({ PATH: '/usr/bin' })).to.equal(undefined);
  });

  it('leaves thresholds an operator set alone', function () {
    if (!onGlibc) this.skip();
    expect(allocatorPrimingSkipped({ GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=268435456' })).to.match(/GLIBC_TUNABLES/);
    expect(allocatorPrimingSkipped({ GLIBC_TUNABLES: 'glibc.pthread.rseq=0' })).to.equal(undefined);
    expect(allocatorPrimingSkipped({ MALLOC_TRIM_THRESHOLD_: '1000000' })).to.match(/MALLOC_/);
    expect(allocatorPrimingSkipped({ MALLOC_MMAP_THRESHOLD_: '1000000' })).to.match(/MALLOC_/);
  });

  it('runs off the event loop and resolves; a skipped priming resolves at once', async function () {
    if (!onGlibc) this.skip();
    const primed = primeAllocator({});
    expect(primed.skipped).to.equal(undefined);
    let ticks = 0;
    const timer = setInterval(() => { ticks++; }, 1);
    await primed.done;
    clearInterval(timer);
    // scrypt of 16 MiB takes tens of milliseconds on the thread pool; the loop kept turning.
    expect(ticks).to.be.greaterThan(0);
    const skipped = primeAllocator({ MALLOC_TRIM_THRESHOLD_: '1' });
    expect(skipped.skipped).to.match(/MALLOC_/);
    await skipped.done;
  });
});
