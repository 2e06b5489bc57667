import { createHash } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';

/**
 * A file whose parsed content is cached and re-read only when the file changes, so that a
 * plugin can honour "re-read on every lookup" (websockify's TokenFile) with one `stat` per
 * lookup instead of a read and a parse.
 *
 * A change is seen through the inode, size, mtime and ctime (nanoseconds). Linux stamps files
 * from a coarse clock (a few ms), so two writes of the same size in one tick share a stamp; like
 * git's "racily clean" index entries, a file read less than `RACY_MS` after its mtime is read
 * again on the next `get()` until its content is old enough to trust. Unchanged content (by
 * hash) is not parsed again, so parse warnings are logged once per change.
 */
export class FileCache<T> {
  private current: { key: string; hash: string; value: T; racy: boolean } | undefined;
  private pending: { key: string; promise: Promise<T> } | undefined;

  /**
   * @param path the file to watch.
   * @param parse turns the file's bytes into the cached value; may throw, and then `get()`
   *   rejects with that error and the previous value is dropped (fail closed).
   */
  constructor(
    readonly path: string,
    private readonly parse: (data: Buffer) => T,
  ) {}

  /**
   * The parsed content as it is on disk now.
   * @param st the file's stats when the caller already has them (saves a `stat`).
   */
  async get(st?: BigIntStats): Promise<T> {
    const stats = st ?? (await stat(this.path, { bigint: true }));
    const key = `${stats.ino}:${stats.size}:${stats.mtimeNs}:${stats.ctimeNs}`;
    const cur = this.current;
    if (cur && cur.key === key && !cur.racy) return cur.value;
    // Concurrent lookups share one read of the same version of the file.
    if (this.pending && this.pending.key === key) return this.pending.promise;
    const promise = this.read(key, stats);
    const entry = { key, promise };
    this.pending = entry;
    try {
      return await promise;
    } finally {
      if (this.pending === entry) this.pending = undefined;
    }
  }

  /** Forget the cached content; the next `get()` reads the file. */
  clear(): void {
    this.current = undefined;
  }

  private async read(key: string, stats: BigIntStats): Promise<T> {
    const readAt = Date.now();
    let data: Buffer;
    try {
      data = await readFile(this.path);
    } catch (err) {
      this.current = undefined;
      throw err;
    }
    const racy = readAt - Number(stats.mtimeMs) < RACY_MS;
    const hash = createHash('sha256').update(data).digest('base64');
    const cur = this.current;
    if (cur && cur.hash === hash) {
      this.current = { key, hash, value: cur.value, racy };
      return cur.value;
    }
    try {
      const value = this.parse(data);
      this.current = { key, hash, value, racy };
      return value;
    } catch (err) {
      this.current = undefined;
      throw err;
    }
  }
}

/** How long after its mtime a file's stamp is not trusted to reveal a later same-size write. */
const RACY_MS = 2000;
