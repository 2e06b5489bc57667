/**
 * Leak accounting for the fault and fuzz suites.
 *
 * In-process: live handles by type (`process._getActiveHandles()`: sockets, servers, child
 * processes) plus the ref'd timers and immediates Node reports in
 * `process.getActiveResourcesInfo()`. Unref'd timers are not visible there; tsockify's own
 * per-connection timers are unref'd, so those are covered by the session and socket counts
 * (a timer that outlives its session holds its socket, or does nothing).
 *
 * Out of process (the CLI): the number of open file descriptors in /proc/PID/fd and the
 * resident set size from /proc/PID/status.
 */
import fs from 'node:fs';

export type Counts = Record<string, number>;

/** Live handles and ref'd timers of this process, by type. */
export function handleCounts(): Counts {
  const out: Counts = {};
  const add = (k: string): void => { out[k] = (out[k] ?? 0) + 1; };
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  for (const h of handles) add(`handle:${(h as { constructor?: { name?: string } })?.constructor?.name ?? typeof h}`);
  for (const r of process.getActiveResourcesInfo()) {
    if (r === 'Timeout' || r === 'Immediate') add(`resource:${r}`);
  }
  return out;
}

/**
 * `handleCounts()` taken after the current tick, so that a test framework's own timer for the
 * running hook (armed once the hook returns its promise) is counted in the baseline too.
 */
export async function baselineCounts(): Promise<Counts> {
  await new Promise((r) => setImmediate(r));
  return handleCounts();
}

/** The keys whose count went up since `before`. */
export function grown(before: Counts, after: Counts): Counts {
  const diff: Counts = {};
  for (const [k, v] of Object.entries(after)) {
    const d = v - (before[k] ?? 0);
    if (d > 0) diff[k] = d;
  }
  return diff;
}

/**
 * Wait until no handle type has more live instances than in `before` (sockets close on a
 * later tick), or fail naming what leaked.
 */
export async function expectNoHandleLeak(before: Counts, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const diff = grown(before, handleCounts());
    if (Object.keys(diff).length === 0) return;
    if (Date.now() > deadline) throw new Error(`leaked handles or timers: ${JSON.stringify(diff)} (before: ${JSON.stringify(before)})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Open file descriptors of a process (Linux). */
export function fdCount(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

/** Open sockets among a process's file descriptors (Linux). */
export function socketFdCount(pid: number): number {
  let n = 0;
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n++;
    } catch {
      // closed while we looked
    }
  }
  return n;
}

/** Resident set size of a process in KiB (VmRSS), or `VmHWM` for the peak. */
export function rssKiB(pid: number, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]);
}

/** Wait until `probe()` returns at most `limit`, or fail with the last value. */
export async function waitAtMost(what: string, probe: () => number, limit: number, timeoutMs = 5000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v <= limit) return v;
    if (Date.now() > deadline) throw new Error(`${what}: ${v} after ${timeoutMs} ms, expected at most ${limit}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
