/**
 * Keep glibc from handing freed read buffers back to the kernel, from inside the process.
 *
 * Node reads client sockets (and TLS targets) into a fresh 64 KiB buffer per read. V8 frees
 * those in batches when it collects them; if glibc then trims the top of its heap, the next
 * reads fault the same pages back in, and a relay spends two to four times the CPU per GiB
 * (docs/benchmarks.md, "Profiling notes"). Whether a process falls into that depends on glibc's
 * dynamic thresholds: mallopt(3) says that when a chunk that was mmap()ed is freed, glibc raises
 * M_MMAP_THRESHOLD to its size and M_TRIM_THRESHOLD to twice that, unless either was set
 * explicitly. Freeing one 16 MiB allocation at startup therefore moves the trim threshold from
 * 128 KiB to 32 MiB for the life of the process, the effect of starting it with
 * `GLIBC_TUNABLES=glibc.malloc.trim_threshold=...` without needing the environment.
 *
 * Node has no malloc() of its own to call, so the allocation is one that is made and freed in
 * native code: scrypt with N = 2^14, r = 8 allocates 128·N·r = 16 MiB in OpenSSL and frees it
 * before returning. It runs on the libuv thread pool (about 80 ms of one thread, once), so the
 * event loop does not wait for it.
 */
import crypto from 'node:crypto';

const N = 16_384;
const R = 8;

/** Why priming is skipped in this process, or undefined if it applies. */
export function allocatorPrimingSkipped(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  // Header of process.report: present only when Node runs on glibc.
  const header = process.report?.getReport?.() as { header?: { glibcVersionRuntime?: string } } | undefined;
  if (!header?.header?.glibcVersionRuntime) return 'not glibc';
  // An operator who set the thresholds has chosen; a set threshold also disables the dynamic one.
  if (/malloc/.test(env.GLIBC_TUNABLES ?? '')) return 'GLIBC_TUNABLES sets malloc tunables';
  if (env.MALLOC_TRIM_THRESHOLD_ !== undefined || env.MALLOC_MMAP_THRESHOLD_ !== undefined) return 'MALLOC_*_THRESHOLD_ set';
  return undefined;
}

/**
 * Raise glibc's trim threshold to 32 MiB as described above. `skipped` says why nothing was
 * done, when it does not apply (see `allocatorPrimingSkipped`); `done` resolves when the
 * allocation has been freed, and never rejects.
 */
export function primeAllocator(env: NodeJS.ProcessEnv = process.env): { skipped: string | undefined; done: Promise<void> } {
  const skipped = allocatorPrimingSkipped(env);
  if (skipped !== undefined) return { skipped, done: Promise.resolve() };
  const done = new Promise<void>((resolve) => {
    crypto.scrypt('', '', 1, { N, r: R, p: 1, maxmem: 2 * 128 * N * R }, () => resolve());
  });
  return { skipped, done };
}
